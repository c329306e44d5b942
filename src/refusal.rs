//! Why a credential was refused. Authentication produces these and the
//! metrics count them, so the kinds live here, below both: each is a
//! bounded metrics label and a message for the client.

/// Why a request was refused; each is a bounded metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    /// Not a key, a token of a configured issuer, or a cluster token.
    Unknown,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    /// The token names a key its issuer does not publish.
    UnknownKey,
    /// The Kubernetes API said the token is not valid.
    Rejected,
    /// The credential could not be checked now (TokenReview unreachable).
    Unavailable,
}

impl Refusal {
    pub const ALL: [Refusal; 11] = [
        Refusal::Missing,
        Refusal::Malformed,
        Refusal::Unknown,
        Refusal::BadSignature,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::WrongIssuer,
        Refusal::WrongAudience,
        Refusal::UnknownKey,
        Refusal::Rejected,
        Refusal::Unavailable,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::Unknown => "unknown_credential",
            Refusal::BadSignature => "bad_signature",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::WrongIssuer => "wrong_issuer",
            Refusal::WrongAudience => "wrong_audience",
            Refusal::UnknownKey => "unknown_key",
            Refusal::Rejected => "rejected",
            Refusal::Unavailable => "unavailable",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Refusal::Missing => {
                "credentials required: send Authorization: Bearer <token> or X-API-Key"
            }
            Refusal::Malformed => "the credential is malformed",
            Refusal::Unknown => "the credential is not recognised",
            Refusal::BadSignature => "the token's signature does not verify",
            Refusal::Expired => "the token has expired",
            Refusal::NotYetValid => "the token is not valid yet",
            Refusal::WrongIssuer => "the token's issuer is not trusted here",
            Refusal::WrongAudience => "the token is for another audience",
            Refusal::UnknownKey => "the token is signed with an unknown key",
            Refusal::Rejected => "the Kubernetes API rejected the token",
            Refusal::Unavailable => "the credential cannot be checked right now; retry",
        }
    }
}
