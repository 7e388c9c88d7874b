//! The SDP model of trust (RFC 8122 5, RFC 4572 6): when the signaling
//! carried the peer's `a=fingerprint`, the certificate that hashes to it is
//! the peer, self-signed or not; the handshake's signatures are still
//! checked, so the peer must hold the certificate's key.
//!
//! A client (the active side) is checked against its server's certificate
//! during the handshake. A server (the passive side) learns which session a
//! connection is for only from its first request, so it asks every client
//! for a certificate, accepts any, and the shard compares it with the
//! session's fingerprint when the request claims the session.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::Fingerprint;

/// The handshake signatures both verifiers check as rustls's own would:
/// whoever presents a certificate must hold its key.
struct Signatures<'a>(&'a rustls::crypto::WebPkiSupportedAlgorithms);

fn signatures(provider: &CryptoProvider) -> Signatures<'_> {
    Signatures(&provider.signature_verification_algorithms)
}

impl Signatures<'_> {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.0)
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.0)
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Accepts the server certificate whose fingerprint is `expected`.
#[derive(Debug)]
pub(super) struct FingerprintVerifier {
    pub expected: Fingerprint,
    pub provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for FingerprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.expected.matches(end_entity) {
            return Ok(ServerCertVerified::assertion());
        }
        let seen = Fingerprint::of(self.expected.hash, end_entity);
        Err(rustls::Error::General(format!(
            "the peer's certificate fingerprint is {seen}, the session expects {} (a=fingerprint)",
            self.expected
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures(&self.provider).tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures(&self.provider).tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signatures(&self.provider).schemes()
    }
}

/// Asks every client for a certificate without requiring one, and accepts
/// whichever it presents once its handshake signature proves it holds the
/// key: the session it claims decides later (RFC 8122 5), and a session
/// without a fingerprint needs none (RFC 4975 14 leaves client
/// certificates optional).
#[derive(Debug)]
pub(super) struct ClientCertificateAsked {
    pub provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for ClientCertificateAsked {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures(&self.provider).tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures(&self.provider).tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signatures(&self.provider).schemes()
    }
}

/// The passive side's check when a request claims a session whose peer's
/// fingerprint the signaling gave: `Err` says what was seen and expected.
pub(crate) fn check_client(expected: &Fingerprint, presented: Option<&[u8]>) -> Result<(), String> {
    match presented {
        Some(der) if expected.matches(der) => Ok(()),
        Some(der) => Err(format!(
            "the peer's client certificate fingerprint is {}, the session expects {expected} (a=fingerprint)",
            Fingerprint::of(expected.hash, der)
        )),
        None => Err(format!(
            "the peer presented no client certificate, the session expects {expected} (a=fingerprint)"
        )),
    }
}
