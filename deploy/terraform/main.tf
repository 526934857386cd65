# The IAM side of installing capstan on one kOps cluster: the role the `capstan` ServiceAccount
# assumes through IRSA, with ../aws/iam-policy.json (rendered for this cluster and bucket) as its
# only policy. The state-store bucket is kOps's own and already exists: it is only read here.
#
# Use this or the kOps way (../kops/cluster-spec-snippet.yaml, iam.serviceAccountExternalPermissions),
# not both. kOps must publish the service-account issuer (serviceAccountIssuerDiscovery with
# enableAWSOIDCProvider: true), which gives the OIDC provider this role trusts.

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

variable "cluster_name" {
  description = "The kOps cluster name, e.g. dev.example.com"
  type        = string
}

variable "state_store_bucket" {
  description = "The kOps state-store bucket (KOPS_STATE_STORE without s3://); it must exist"
  type        = string
}

variable "oidc_provider_arn" {
  description = "The IAM OIDC provider kOps created for the cluster's service-account issuer (arn:aws:iam::<account>:oidc-provider/<issuer>)"
  type        = string
}

variable "oidc_issuer" {
  description = "The issuer host and path, without https:// (serviceAccountIssuerDiscovery.discoveryStore's bucket URL, e.g. example-oidc-discovery.s3.us-east-1.amazonaws.com/dev.example.com)"
  type        = string
}

variable "namespace" {
  description = "The namespace capstan runs in"
  type        = string
  default     = "capstan"
}

variable "service_account" {
  description = "capstan's ServiceAccount"
  type        = string
  default     = "capstan"
}

variable "interruption_queue" {
  description = "The SQS queue capstan reads interruption notices from (aws.interruption.queue); default capstan-<cluster name with dashes>"
  type        = string
  default     = ""
}

variable "create_interruption_queue" {
  description = "Create the queue and the EventBridge rules that feed it (false: the queue exists, e.g. one kOps made)"
  type        = bool
  default     = true
}

locals {
  # SQS queue names hold letters, digits, - and _ only (at most 80).
  interruption_queue = var.interruption_queue != "" ? var.interruption_queue : substr("capstan-${replace(var.cluster_name, ".", "-")}", 0, 80)
  # The EC2 events capstan acts on, each routed to the queue by its own rule; state changes
  # only to the states that take an instance away (pending and running would only be deleted).
  interruption_events = {
    spot-interruption  = { source = ["aws.ec2"], "detail-type" = ["EC2 Spot Instance Interruption Warning"] }
    rebalance          = { source = ["aws.ec2"], "detail-type" = ["EC2 Instance Rebalance Recommendation"] }
    state-change       = { source = ["aws.ec2"], "detail-type" = ["EC2 Instance State-change Notification"], detail = { state = ["stopping", "stopped", "shutting-down", "terminated"] } }
    scheduled-change   = { source = ["aws.health"], "detail-type" = ["AWS Health Event"] }
    reservation-notice = { source = ["aws.ec2"], "detail-type" = ["EC2 Capacity Reservation Instance Interruption Warning"] }
  }
}

resource "aws_sqs_queue" "interruption" {
  count                     = var.create_interruption_queue ? 1 : 0
  name                      = local.interruption_queue
  message_retention_seconds = 300
  sqs_managed_sse_enabled   = true
}

# Only this account's rules below may send: a forged spot warning drains a node at once.
data "aws_iam_policy_document" "interruption_queue" {
  count = var.create_interruption_queue ? 1 : 0
  statement {
    sid       = "OnlyTheseEventBridgeRules"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.interruption[0].arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for r in aws_cloudwatch_event_rule.interruption : r.arn]
    }
  }
  statement {
    sid       = "OnlyOverTls"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.interruption[0].arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "interruption" {
  count     = var.create_interruption_queue ? 1 : 0
  queue_url = aws_sqs_queue.interruption[0].id
  policy    = data.aws_iam_policy_document.interruption_queue[0].json
}

resource "aws_cloudwatch_event_rule" "interruption" {
  for_each      = var.create_interruption_queue ? local.interruption_events : {}
  # At most 64 characters: the cluster part is cut, the event's key (at most 18) kept.
  name          = "${substr("capstan-${replace(var.cluster_name, ".", "-")}", 0, 44)}-${each.key}"
  description   = "EC2 ${each.key} events for capstan on ${var.cluster_name}"
  event_pattern = jsonencode(each.value)
}

resource "aws_cloudwatch_event_target" "interruption" {
  for_each = aws_cloudwatch_event_rule.interruption
  rule     = each.value.name
  arn      = aws_sqs_queue.interruption[0].arn
}

data "aws_s3_bucket" "state_store" {
  bucket = var.state_store_bucket
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "capstan" {
  name               = "capstan.${var.cluster_name}"
  description        = "capstan on the kOps cluster ${var.cluster_name} (IRSA: ${var.namespace}/${var.service_account})"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

# The policy lets capstan pass only the kOps node role (nodes.<cluster>) to EC2, make and delete
# instance profiles only under /capstan/<cluster>/, and read only its interruption queue. An
# EC2NodeClass naming another role needs that role's ARN added to the PassTheNodeRole statement.
resource "aws_iam_role_policy" "capstan" {
  name = "capstan"
  role = aws_iam_role.capstan.id
  policy = templatefile("${path.module}/../aws/iam-policy.json", {
    cluster_name       = var.cluster_name
    state_store_bucket = data.aws_s3_bucket.state_store.bucket
    interruption_queue = local.interruption_queue
  })
}

output "role_arn" {
  description = "Put this in the ServiceAccount's eks.amazonaws.com/role-arn annotation (the overlay's serviceaccount.yaml)"
  value       = aws_iam_role.capstan.arn
}

output "interruption_queue" {
  description = "Put this in the daemon config's aws.interruption.queue"
  value       = local.interruption_queue
}
