//! SIP messages, transactions and dialogs (RFC 3261).
