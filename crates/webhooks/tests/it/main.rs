//! patchbay-webhooks: signature schemes (pure), and the inbox and sources on both stores.

mod batcher;
mod events_out;
mod inbox;
mod processor;
mod retention;
mod schemes;
