//! The production wrapper: AWS KMS `Encrypt`/`Decrypt` with the encryption context.

use super::{KeyWrapper, WrapContext, WrapError, WrapperKind};
use crate::secret::SecretString;
use async_trait::async_trait;
use std::fmt;

/// AWS KMS `Encrypt`/`Decrypt` with the encryption context.
#[derive(Debug, Clone)]
pub struct KmsWrapper {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsWrapper {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }

    /// A client from the standard AWS configuration chain (environment, ECS task role, …),
    /// optionally against another endpoint (a local emulator in tests).
    pub async fn from_environment(key_id: &str, endpoint: Option<&str>) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let mut builder = aws_sdk_kms::config::Builder::from(&shared);
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self::new(aws_sdk_kms::Client::from_conf(builder.build()), key_id)
    }
}

/// KMS errors that say "this ciphertext will never open here" rather than "try later".
fn kms_error<E>(err: aws_sdk_kms::error::SdkError<E>) -> WrapError
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + fmt::Debug,
{
    use aws_sdk_kms::error::SdkError;
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            match code {
                "InvalidCiphertextException"
                | "IncorrectKeyException"
                | "InvalidKeyUsageException"
                | "NotFoundException"
                | "DisabledException"
                | "KMSInvalidStateException" => WrapError::Rejected(code.to_owned()),
                _ => WrapError::Unavailable(code.to_owned()),
            }
        }
        SdkError::TimeoutError(_) => WrapError::Unavailable("timeout".into()),
        SdkError::DispatchFailure(_) => WrapError::Unavailable("cannot reach KMS".into()),
        _ => WrapError::Unavailable("KMS call failed".into()),
    }
}

#[async_trait]
impl KeyWrapper for KmsWrapper {
    fn kind(&self) -> WrapperKind {
        WrapperKind::Kms
    }

    async fn wrap(
        &self,
        plaintext: &SecretString,
        context: &WrapContext,
    ) -> Result<Vec<u8>, WrapError> {
        let mut call = self.client.encrypt().key_id(&self.key_id).plaintext(
            aws_sdk_kms::primitives::Blob::new(plaintext.expose().as_bytes()),
        );
        for (k, v) in context.pairs() {
            call = call.encryption_context(k, v);
        }
        let out = call.send().await.map_err(kms_error)?;
        out.ciphertext_blob
            .map(aws_sdk_kms::primitives::Blob::into_inner)
            .ok_or_else(|| WrapError::Unavailable("KMS returned no ciphertext".into()))
    }

    async fn unwrap(
        &self,
        ciphertext: &[u8],
        context: &WrapContext,
    ) -> Result<SecretString, WrapError> {
        let mut call = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(ciphertext));
        for (k, v) in context.pairs() {
            call = call.encryption_context(k, v);
        }
        let out = call.send().await.map_err(kms_error)?;
        let plain = zeroize::Zeroizing::new(
            out.plaintext
                .map(aws_sdk_kms::primitives::Blob::into_inner)
                .ok_or_else(|| WrapError::Unavailable("KMS returned no plaintext".into()))?,
        );
        String::from_utf8(plain.to_vec())
            .map(SecretString::new)
            .map_err(|_| WrapError::Rejected("plaintext is not UTF-8".into()))
    }
}
