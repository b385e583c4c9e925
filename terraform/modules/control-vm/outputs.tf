output "instance_id" {
  description = "The control VM (reach it with SSM Session Manager, or SSH if your AMI allows)."
  value       = aws_instance.control.id
}

output "private_ip" {
  description = "Its private address (the daemon's /metrics is on 127.0.0.1 unless the policy's http_listen says otherwise)."
  value       = aws_instance.control.private_ip
}
