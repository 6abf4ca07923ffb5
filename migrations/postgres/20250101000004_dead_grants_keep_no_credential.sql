-- A dead grant keeps no ciphertext (security.md D3): entering `needs_reauth` or `revoked` now
-- destroys the credential in the same transaction. This removes what earlier binaries kept for
-- connections already in those states. A rolled-back binary copes: such a connection serves no
-- token either way, and a reconnect writes a new credential.
DELETE FROM credential
WHERE connection_id IN (SELECT id FROM connection WHERE status IN ('needs_reauth', 'revoked'));
