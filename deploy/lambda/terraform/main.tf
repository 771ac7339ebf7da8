# s3logd as a Lambda function on provided.al2023: S3 notifies an SQS
# queue whose batches invoke it with partial batch responses (or, with
# trigger = "s3", S3 invokes it directly), and it stores the logs in the
# stores its configuration names. The role allows exactly what that takes:
# reading the log objects, consuming the queue, its own logs, and the
# CloudWatch Logs sink and S3 dead letters of deploy/lambda/s3logd.toml;
# add statements for other stores (es:ESHttpPost for OpenSearch with SigV4).

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_s3_bucket" "logs" {
  bucket = var.log_bucket
}

locals {
  sqs        = var.trigger == "sqs"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = 30
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "function" {
  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }
  statement {
    sid       = "ReadLogObjects"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${data.aws_s3_bucket.logs.arn}/${var.log_prefix}*"]
  }
  statement {
    sid       = "WriteDeadLetters"
    actions   = ["s3:PutObject"]
    resources = ["${data.aws_s3_bucket.logs.arn}/${var.dead_letter_prefix}*"]
  }
  statement {
    sid = "CloudWatchLogsSink"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = [
      "arn:aws:logs:${local.region}:${local.account_id}:log-group:${var.cloudwatch_log_group_prefix}*",
    ]
  }
  dynamic "statement" {
    for_each = local.sqs ? [1] : []
    content {
      sid = "ConsumeQueue"
      actions = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
      ]
      resources = [aws_sqs_queue.notifications[0].arn]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  name   = var.name
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

resource "aws_lambda_function" "s3logd" {
  function_name    = var.name
  role             = aws_iam_role.function.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = var.package
  source_code_hash = filebase64sha256(var.package)
  memory_size      = var.memory_mb
  timeout          = var.timeout_secs
  environment {
    variables = var.environment
  }
  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function.name
  }
  depends_on = [aws_iam_role_policy.function]
}

# The queue route: SQS retries exactly the messages the function names in
# batchItemFailures, and after five receives parks them in the dead-letter
# queue.
resource "aws_sqs_queue" "dead_letters" {
  count                     = local.sqs ? 1 : 0
  name                      = "${var.name}-dead-letters"
  message_retention_seconds = 1209600
}

resource "aws_sqs_queue" "notifications" {
  count = local.sqs ? 1 : 0
  name  = "${var.name}-notifications"
  # AWS asks for six times the function's timeout.
  visibility_timeout_seconds = 6 * var.timeout_secs
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letters[0].arn
    maxReceiveCount     = 5
  })
}

data "aws_iam_policy_document" "s3_to_queue" {
  count = local.sqs ? 1 : 0
  statement {
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.notifications[0].arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [data.aws_s3_bucket.logs.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "s3_to_queue" {
  count     = local.sqs ? 1 : 0
  queue_url = aws_sqs_queue.notifications[0].id
  policy    = data.aws_iam_policy_document.s3_to_queue[0].json
}

resource "aws_lambda_event_source_mapping" "queue" {
  count                              = local.sqs ? 1 : 0
  event_source_arn                   = aws_sqs_queue.notifications[0].arn
  function_name                      = aws_lambda_function.s3logd.arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 5
  function_response_types            = ["ReportBatchItemFailures"]
}

# The direct route: S3 invokes the function asynchronously; an invocation
# that reports objects not stored is retried twice by Lambda.
resource "aws_lambda_permission" "s3" {
  count          = local.sqs ? 0 : 1
  statement_id   = "s3-invokes"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.s3logd.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = data.aws_s3_bucket.logs.arn
  source_account = local.account_id
}

resource "aws_s3_bucket_notification" "logs" {
  bucket = data.aws_s3_bucket.logs.id

  dynamic "queue" {
    for_each = local.sqs ? [1] : []
    content {
      queue_arn     = aws_sqs_queue.notifications[0].arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = var.log_prefix
    }
  }

  dynamic "lambda_function" {
    for_each = local.sqs ? [] : [1]
    content {
      lambda_function_arn = aws_lambda_function.s3logd.arn
      events              = ["s3:ObjectCreated:*"]
      filter_prefix       = var.log_prefix
    }
  }

  depends_on = [aws_sqs_queue_policy.s3_to_queue, aws_lambda_permission.s3]
}

output "function_arn" {
  value = aws_lambda_function.s3logd.arn
}

output "queue_url" {
  value = local.sqs ? aws_sqs_queue.notifications[0].id : null
}
