//! EC2 through aws-sdk-ec2: endpoint, region and credentials come from the standard AWS chain,
//! with an endpoint override for tests and other EC2-compatible endpoints.

pub mod catalog;
pub mod provider;
pub mod resolve;
pub mod template;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

use super::CloudError;

/// Where EC2 is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Overrides the endpoint the AWS chain would use.
    pub url: Option<String>,
    pub region: Option<String>,
}

/// SDK configuration from the standard chain plus overrides.
pub async fn sdk_config(endpoint: &Endpoint) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = &endpoint.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(u) = &endpoint.url {
        loader = loader.endpoint_url(u);
    }
    loader.load().await
}

/// An EC2 client from the standard chain plus overrides.
pub async fn ec2(endpoint: &Endpoint) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config(endpoint).await)
}

/// Maps an SDK error to a typed one, naming the call.
pub fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    call: &str,
    err: SdkError<E, R>,
) -> CloudError {
    if let SdkError::ServiceError(service) = &err {
        let e = service.err();
        let code = e.code().unwrap_or_default();
        let message = format!("{call}: {code}: {}", e.message().unwrap_or_default());
        return match code {
            "InsufficientInstanceCapacity"
            | "InsufficientCapacity"
            | "InsufficientFreeAddressesInSubnet"
            | "UnfulfillableCapacity" => CloudError::InsufficientCapacity { offerings: vec![message] },
            "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => CloudError::Throttled(message),
            "AuthFailure"
            | "UnauthorizedOperation"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken" => CloudError::Unauthorized(format!(
                "{message}; check the credentials in the AWS chain (environment, profile, IRSA) and the IAM policy"
            )),
            c if c.ends_with(".NotFound") => CloudError::NotFound(message),
            _ => CloudError::Api(message),
        };
    }
    let text = format!("{err:?}");
    if lacks_credentials(&text) {
        return CloudError::Unauthorized(format!(
            "{call}: no AWS credentials found; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or IRSA"
        ));
    }
    CloudError::Api(format!("{call}: {}", short(&text)))
}

/// Whether an SDK error (its debug text) means no credentials could be found in the chain.
pub fn lacks_credentials(text: &str) -> bool {
    let markers = [
        "no credentials",
        "CredentialsNotLoaded",
        "NoCredentials",
        "NoIdentityResolver",
        "NoMatchingAuthScheme",
        "FailedToLoadToken",
    ];
    markers.iter().any(|m| text.contains(m))
}

fn short(text: &str) -> String {
    text.chars().take(300).collect()
}

/// An SSM client from the same chain.
pub async fn ssm(endpoint: &Endpoint) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config(endpoint).await)
}

/// The value of an SSM parameter (an AMI id); `None` when it does not exist.
pub async fn ssm_parameter(client: &aws_sdk_ssm::Client, name: &str) -> Result<Option<String>, CloudError> {
    match client.get_parameter().name(name).send().await {
        Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
        Err(e) => match classify("GetParameter", e) {
            CloudError::Api(m) if m.contains("ParameterNotFound") => Ok(None),
            other => Err(other),
        },
    }
}
