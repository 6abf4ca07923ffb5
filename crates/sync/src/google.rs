//! Google Calendar: the API client and the sync engine (architecture §4.3, providers.md B6).
