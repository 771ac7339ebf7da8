output "queue_url" {
  description = "s3logd's queue.url."
  value       = aws_sqs_queue.notifications.id
}

output "queue_arn" {
  value = aws_sqs_queue.notifications.arn
}

output "dead_letter_queue_url" {
  description = "Where messages s3logd gave up on end; alert on its depth."
  value       = aws_sqs_queue.dead_letters.id
}

output "policy_arn" {
  description = "The policy to attach to whatever identity runs s3logd."
  value       = aws_iam_policy.s3logd.arn
}

output "role_arn" {
  description = "With irsa set: the eks.amazonaws.com/role-arn of s3logd's service account."
  value       = var.irsa == null ? null : aws_iam_role.service_account[0].arn
}
