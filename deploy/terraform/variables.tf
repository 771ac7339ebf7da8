variable "name" {
  description = "Name of the queue (its dead-letter queue is <name>-dead-letters), the IAM policy and the role."
  type        = string
  default     = "s3logd"
}

variable "log_bucket" {
  description = "The bucket AWS writes the logs to; it must exist. Its notification configuration is managed here: a bucket has only one."
  type        = string
}

variable "filter_prefix" {
  description = "Only objects under this prefix are announced and readable (\"\" for the whole bucket)."
  type        = string
  default     = "AWSLogs/"
}

variable "filter_suffix" {
  description = "Only objects whose key ends so are announced (\".log.gz\" for ALB, \"\" for any)."
  type        = string
  default     = ""
}

variable "max_receive_count" {
  description = "Receives after which SQS moves a message to the dead-letter queue; keep it at or above s3logd's queue.max_receive_count."
  type        = number
  default     = 5
}

variable "visibility_timeout_secs" {
  description = "The queue's visibility timeout: s3logd's queue.visibility_timeout_secs (its heartbeat extends messages in work)."
  type        = number
  default     = 300
}

variable "sns_topic_arns" {
  description = "SNS topics that may also deliver notifications to the queue (fan-out from one bucket to several consumers)."
  type        = list(string)
  default     = []
}

variable "eventbridge_rule_arns" {
  description = "EventBridge rules that may also send Object Created events to the queue."
  type        = list(string)
  default     = []
}

variable "kms_key_arns" {
  description = "KMS keys the log objects are encrypted with (SSE-KMS); s3logd may decrypt with them."
  type        = list(string)
  default     = []
}

variable "cloudwatch_log_group_arns" {
  description = "Log groups a cloudwatch_logs sink writes to (ARNs, \"*\" wildcards allowed); empty when there is none."
  type        = list(string)
  default     = []
}

variable "opensearch_domain_arns" {
  description = "OpenSearch Service domains an elasticsearch sink with aws_sigv4 writes to; empty when there is none."
  type        = list(string)
  default     = []
}

variable "archive_object_arns" {
  description = "Objects an s3_archive sink or dead_letter.s3_url writes (ARNs such as arn:aws:s3:::archive/s3logd/*); empty when there are none."
  type        = list(string)
  default     = []
}

variable "irsa" {
  description = "When set, a role s3logd's Kubernetes service account assumes through the cluster's OIDC provider (IRSA), with the policy attached."
  type = object({
    oidc_provider_arn = string
    namespace         = optional(string, "s3logd")
    service_account   = optional(string, "s3logd")
  })
  default = null
}
