# s3logd as a Lambda function on provided.al2023: S3 notifies an SQS
# queue whose batches invoke it with partial batch responses (or, with
# trigger = "s3", S3 invokes it directly), and it stores the logs in the
# stores its configuration names. The queue, its dead-letter queue and
# notification, and s3logd's policy are deploy/terraform's module. The role
# allows exactly what that takes: reading the log objects, consuming the
# queue, its own logs, and the CloudWatch Logs sink and S3 dead letters of
# deploy/lambda/s3logd.toml; for other stores, set the module's variables
# (opensearch_domain_arns for OpenSearch with SigV4).

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
  sqs                   = var.trigger == "sqs"
  account_id            = data.aws_caller_identity.current.account_id
  cloudwatch_log_groups = "arn:aws:logs:${data.aws_region.current.name}:${local.account_id}:log-group:${var.cloudwatch_log_group_prefix}*"
  dead_letter_objects   = "${data.aws_s3_bucket.logs.arn}/${var.dead_letter_prefix}*"
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

# The queue route: deploy/terraform's queue, dead-letter queue (five
# receives), the bucket's notification and s3logd's policy, which the
# function's role gets.
module "queue" {
  source = "../../terraform"
  count  = local.sqs ? 1 : 0

  name          = var.name
  log_bucket    = var.log_bucket
  filter_prefix = var.log_prefix
  # AWS asks for six times the function's timeout.
  visibility_timeout_secs   = 6 * var.timeout_secs
  cloudwatch_log_group_arns = [local.cloudwatch_log_groups]
  archive_object_arns       = [local.dead_letter_objects]
}

resource "aws_iam_role_policy_attachment" "queue" {
  count      = local.sqs ? 1 : 0
  role       = aws_iam_role.function.name
  policy_arn = module.queue[0].policy_arn
}

data "aws_iam_policy_document" "function" {
  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }
  # Lambda's event source mapping reads the queue's attributes, beside
  # what s3logd does with it.
  dynamic "statement" {
    for_each = local.sqs ? [1] : []
    content {
      sid       = "PollQueue"
      actions   = ["sqs:GetQueueAttributes"]
      resources = [module.queue[0].queue_arn]
    }
  }
  # The direct route has no queue: the module's policy without it.
  dynamic "statement" {
    for_each = local.sqs ? [] : [1]
    content {
      sid       = "ReadLogObjects"
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = ["${data.aws_s3_bucket.logs.arn}/${var.log_prefix}*"]
    }
  }
  dynamic "statement" {
    for_each = local.sqs ? [] : [1]
    content {
      sid       = "ArchiveWrites"
      actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
      resources = [local.dead_letter_objects]
    }
  }
  dynamic "statement" {
    for_each = local.sqs ? [] : [1]
    content {
      sid       = "CloudWatchLogsSink"
      actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
      resources = [local.cloudwatch_log_groups, "${local.cloudwatch_log_groups}:log-stream:*"]
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
  depends_on = [aws_iam_role_policy.function, aws_iam_role_policy_attachment.queue]
}

# SQS retries exactly the messages the function names in batchItemFailures.
resource "aws_lambda_event_source_mapping" "queue" {
  count                              = local.sqs ? 1 : 0
  event_source_arn                   = module.queue[0].queue_arn
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
  count  = local.sqs ? 0 : 1
  bucket = data.aws_s3_bucket.logs.id
  lambda_function {
    lambda_function_arn = aws_lambda_function.s3logd.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = var.log_prefix
  }
  depends_on = [aws_lambda_permission.s3]
}

output "function_arn" {
  value = aws_lambda_function.s3logd.arn
}

output "queue_url" {
  value = local.sqs ? module.queue[0].queue_url : null
}
