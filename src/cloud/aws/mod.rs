//! EC2 through aws-sdk-ec2: endpoint, region and credentials come from the standard AWS chain,
//! with an endpoint override for tests and other EC2-compatible endpoints.

pub mod catalog;
pub mod price_list;
pub mod pricing;
pub mod profile;
pub mod provider;
pub mod recent;
pub mod reserved;
pub mod resolve;
pub mod sqs;
pub mod template;
pub mod tidy;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::SharedHttpClient;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use super::CloudError;

/// Where EC2 is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Overrides the endpoint the AWS chain would use.
    pub url: Option<String>,
    pub region: Option<String>,
}

/// The HTTPS client of every AWS call, the credential providers' included: rustls with ring and
/// the system's trusted roots, as kube's client has.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The standard AWS chain (region, credentials, profile, endpoint settings) over [`http_client`].
pub fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client())
}

/// SDK configuration from the standard chain plus overrides.
pub async fn sdk_config(endpoint: &Endpoint) -> aws_config::SdkConfig {
    let mut loader = loader();
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

/// EC2 error codes that mean "this offering cannot be had right now": the request named
/// offerings EC2 has no capacity for, does not support in that zone, or cannot place. They
/// become [`CloudError::InsufficientCapacity`], whether they answer the whole call or one
/// override in CreateFleet's `Errors[]`.
pub const NO_CAPACITY: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity",
    "ReservationCapacityExceeded",
    "InsufficientFreeAddressesInSubnet",
    "UnfulfillableCapacity",
    "Unsupported",
    "MaxSpotInstanceCountExceeded",
    "SpotMaxPriceTooLow",
    "VcpuLimitExceeded",
];

/// Whether an EC2 error code means the offering has no capacity (see [`NO_CAPACITY`]).
pub fn no_capacity(code: &str) -> bool {
    NO_CAPACITY.contains(&code)
}

/// The EC2 error code of a failed call, when EC2 answered one.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// Maps an SDK error to a typed one from its EC2 error code (never its message), naming the
/// call. An out-of-capacity code names no offering here: the caller knows which it asked for
/// and fills them in.
pub fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    call: &str,
    err: SdkError<E, R>,
) -> CloudError {
    if let SdkError::ServiceError(service) = &err {
        let e = service.err();
        return match e.code() {
            Some(code) => from_code(call, code, e.message().unwrap_or_default()),
            None => CloudError::Api(format!(
                "{call}: the endpoint answered with no AWS error code (is it an AWS endpoint?): {}",
                short(&without_key_ids(&format!("{:?}", service.raw())))
            )),
        };
    }
    let text = format!("{err:?}");
    if lacks_credentials(&text) {
        return CloudError::Unauthorized(format!(
            "{call}: no AWS credentials found; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or IRSA"
        ));
    }
    CloudError::Api(format!("{call}: {}", short(&without_key_ids(&text))))
}

/// The typed error for an EC2 error `code` answered to `call` (`message` is only shown).
pub fn from_code(call: &str, code: &str, message: &str) -> CloudError {
    // An error message may quote the access key id the call was signed with: it is logged,
    // shown in /status and on the board, so it goes.
    let message = format!("{call}: {code}: {}", without_key_ids(message));
    match code {
        c if no_capacity(c) => CloudError::InsufficientCapacity { offerings: Vec::new() },
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => CloudError::Throttled(message),
        "AuthFailure" | "UnauthorizedOperation" | "InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken" => {
            CloudError::Unauthorized(format!(
                "{message}; check the credentials in the AWS chain (environment, profile, IRSA) and the IAM policy"
            ))
        }
        c if c.ends_with(".NotFound") || c == "ParameterNotFound" => CloudError::NotFound(message),
        _ => CloudError::Api(message),
    }
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

/// `text` with every AWS access key id (`AKIA…`/`ASIA…`, 20 characters) replaced by
/// `[redacted]`.
pub fn without_key_ids(text: &str) -> String {
    let is_key = |w: &str| {
        w.len() == 20
            && (w.starts_with("AKIA") || w.starts_with("ASIA"))
            && w.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive(|c: char| !c.is_ascii_alphanumeric()) {
        let word = piece.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        if is_key(word) {
            out.push_str("[redacted]");
            out.push_str(&piece[word.len()..]);
        } else {
            out.push_str(piece);
        }
    }
    out
}

fn short(text: &str) -> String {
    text.chars().take(300).collect()
}

/// An IAM client from the same chain (instance profiles for EC2NodeClasses that name a role).
pub async fn iam(endpoint: &Endpoint) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&sdk_config(endpoint).await)
}

/// An SSM client from the same chain.
pub async fn ssm(endpoint: &Endpoint) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config(endpoint).await)
}

/// The value of an SSM parameter (an AMI id); `None` when it does not exist.
pub async fn ssm_parameter(client: &aws_sdk_ssm::Client, name: &str) -> Result<Option<String>, CloudError> {
    match client.get_parameter().name(name).send().await {
        Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
        Err(e) if error_code(&e) == Some("ParameterNotFound") => Ok(None),
        Err(e) => Err(classify("GetParameter", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_key_id_in_an_ec2_message_is_never_shown() {
        let e = from_code(
            "RunInstances",
            "AuthFailure",
            "AWS was not able to validate the provided access credentials (AKIAIOSFODNN7EXAMPLE)",
        );
        let text = e.to_string();
        assert!(!text.contains("IOSFODNN7EXAMPLE"), "{text}");
        assert!(text.contains("credentials ([redacted])"), "{text}");
        let other = from_code("DescribeInstances", "Boom", "key ASIAIOSFODNN7EXAMPLE, request AKIA-1");
        assert!(other.to_string().ends_with("key [redacted], request AKIA-1"), "{other}");
    }

    #[test]
    fn an_answer_that_is_no_aws_error_names_the_endpoint_and_the_status() {
        use aws_sdk_ec2::config::http::HttpResponse;
        use aws_sdk_ec2::error::ErrorMetadata;
        use aws_sdk_ec2::operation::describe_instance_types::DescribeInstanceTypesError;
        let raw = HttpResponse::new(404.try_into().unwrap(), "<html>not here</html>".into());
        let err = SdkError::service_error(DescribeInstanceTypesError::generic(ErrorMetadata::builder().build()), raw);
        let text = classify("DescribeInstanceTypes", err).to_string();
        assert!(text.contains("DescribeInstanceTypes: the endpoint answered with no AWS error code"), "{text}");
        assert!(text.contains("404"), "{text}");
    }
}
