//! SDP offer/answer for MSRP media (RFC 4975 8, RFC 3264).
