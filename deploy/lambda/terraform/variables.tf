variable "name" {
  description = "Name of the function, its role, queue and log group."
  type        = string
  default     = "s3logd"
}

variable "log_bucket" {
  description = "The bucket the load balancers (or Firehose) write their logs to; it must exist."
  type        = string
}

variable "log_prefix" {
  description = "Only objects under this prefix are collected."
  type        = string
  default     = "AWSLogs/"
}

variable "package" {
  description = "The zip built by deploy/lambda/build.sh."
  type        = string
  default     = "../../../target/lambda-package/arm64/s3logd-lambda-arm64.zip"
}

variable "architecture" {
  description = "arm64 or x86_64: the architecture the package was built for."
  type        = string
  default     = "arm64"
}

variable "trigger" {
  description = "sqs: S3 notifies a queue whose batches invoke the function, with partial batch responses (recommended). s3: S3 invokes the function directly, as the forwarders it replaces did."
  type        = string
  default     = "sqs"
  validation {
    condition     = contains(["sqs", "s3"], var.trigger)
    error_message = "trigger is sqs or s3."
  }
}

variable "memory_mb" {
  description = "The function's memory; s3logd streams objects, so it bounds concurrency and buffers, not object size."
  type        = number
  default     = 1024
}

variable "timeout_secs" {
  description = "The function's timeout. Objects unfinished 2 s before it are reported not stored and retried."
  type        = number
  default     = 300
}

variable "environment" {
  description = "S3LOGD_* variables: configuration beside or instead of a bundled s3logd.toml."
  type        = map(string)
  default     = {}
}

variable "cloudwatch_log_group_prefix" {
  description = "Log groups the CloudWatch Logs sink may create and write to."
  type        = string
  default     = "/aws/elb/"
}

variable "dead_letter_prefix" {
  description = "Where in log_bucket dead letters are written (dead_letter.s3_url)."
  type        = string
  default     = "s3logd-dead-letters/"
}
