# What s3logd needs around it in AWS: the queue a log bucket announces new
# objects to, with a dead-letter queue for messages s3logd could not finish;
# the bucket notification; and a least-privilege policy for s3logd (with a
# role for its Kubernetes service account when `irsa` is set). The
# statements ConsumeQueue and ReadLogObjects are README's minimal policy;
# the others exist only for the stores the variables name.

data "aws_s3_bucket" "logs" {
  bucket = var.log_bucket
}

data "aws_caller_identity" "current" {}

locals {
  forwarders = {
    TopicDeliveries  = { service = "sns.amazonaws.com", sources = var.sns_topic_arns }
    EventBridgeRules = { service = "events.amazonaws.com", sources = var.eventbridge_rule_arns }
  }
}

resource "aws_sqs_queue" "dead_letters" {
  name                      = "${var.name}-dead-letters"
  message_retention_seconds = 1209600
}

resource "aws_sqs_queue" "notifications" {
  name                       = var.name
  visibility_timeout_seconds = var.visibility_timeout_secs
  message_retention_seconds  = 1209600
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letters.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letters" {
  queue_url = aws_sqs_queue.dead_letters.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.notifications.arn]
  })
}

data "aws_iam_policy_document" "senders" {
  statement {
    sid       = "BucketNotifications"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.notifications.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [data.aws_s3_bucket.logs.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
  # SNS topics and EventBridge rules that forward the bucket's events.
  dynamic "statement" {
    for_each = { for sid, sender in local.forwarders : sid => sender if length(sender.sources) > 0 }
    content {
      sid       = statement.key
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.notifications.arn]
      principals {
        type        = "Service"
        identifiers = [statement.value.service]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = statement.value.sources
      }
    }
  }
}

resource "aws_sqs_queue_policy" "senders" {
  queue_url = aws_sqs_queue.notifications.id
  policy    = data.aws_iam_policy_document.senders.json
}

resource "aws_s3_bucket_notification" "logs" {
  bucket = data.aws_s3_bucket.logs.id
  queue {
    queue_arn     = aws_sqs_queue.notifications.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = var.filter_prefix
    filter_suffix = var.filter_suffix
  }
  # S3 sends a test event to check it may; the policy must come first.
  depends_on = [aws_sqs_queue_policy.senders]
}

data "aws_iam_policy_document" "s3logd" {
  statement {
    sid = "ConsumeQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [aws_sqs_queue.notifications.arn]
  }
  statement {
    sid       = "ReadLogObjects"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${data.aws_s3_bucket.logs.arn}/${var.filter_prefix}*"]
  }
  dynamic "statement" {
    for_each = length(var.kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptLogObjects"
      actions   = ["kms:Decrypt"]
      resources = var.kms_key_arns
    }
  }
  dynamic "statement" {
    for_each = length(var.cloudwatch_log_group_arns) > 0 ? [1] : []
    content {
      sid = "CloudWatchLogsSink"
      actions = [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
      ]
      resources = concat(
        var.cloudwatch_log_group_arns,
        [for arn in var.cloudwatch_log_group_arns : "${arn}:log-stream:*"],
      )
    }
  }
  dynamic "statement" {
    for_each = length(var.opensearch_domain_arns) > 0 ? [1] : []
    content {
      sid       = "OpenSearchSink"
      actions   = ["es:ESHttpPost"]
      resources = [for arn in var.opensearch_domain_arns : "${arn}/*"]
    }
  }
  dynamic "statement" {
    for_each = length(var.archive_object_arns) > 0 ? [1] : []
    content {
      sid       = "ArchiveWrites"
      actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
      resources = var.archive_object_arns
    }
  }
}

resource "aws_iam_policy" "s3logd" {
  name        = var.name
  description = "s3logd: consume ${aws_sqs_queue.notifications.name}, read s3://${var.log_bucket}/${var.filter_prefix}, write its stores."
  policy      = data.aws_iam_policy_document.s3logd.json
}

locals {
  oidc_issuer = var.irsa == null ? null : element(split(":oidc-provider/", var.irsa.oidc_provider_arn), 1)
}

data "aws_iam_policy_document" "service_account" {
  count = var.irsa == null ? 0 : 1
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.irsa.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.irsa.namespace}:${var.irsa.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "service_account" {
  count              = var.irsa == null ? 0 : 1
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.service_account[0].json
}

resource "aws_iam_role_policy_attachment" "service_account" {
  count      = var.irsa == null ? 0 : 1
  role       = aws_iam_role.service_account[0].name
  policy_arn = aws_iam_policy.s3logd.arn
}
