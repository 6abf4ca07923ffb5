//! monday.com: the GraphQL client and the sync engine (architecture §4.3, providers.md A2, A3).
