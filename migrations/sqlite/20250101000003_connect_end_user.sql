-- Who a connect is for, as the app describes them: the confirmation page at GET /connect/{token}
-- shows it before anything is consumed, so a person sent someone else's link sees whose it is
-- (connection fixation, security.md A/F). Expand only: two nullable columns.
ALTER TABLE connect_session ADD COLUMN end_user_name TEXT;
ALTER TABLE connect_session ADD COLUMN end_user_email TEXT;
