output "on_demand_asg_name" {
  description = "asg_name of the policy's on-demand pool."
  value       = aws_autoscaling_group.on_demand.name
}

output "spot_asg_name" {
  description = "asg_name of the policy's spot pool."
  value       = aws_autoscaling_group.spot.name
}

output "events_queue_url" {
  description = "SQS queue of interruption, rebalance and lifecycle events ([global.aws] events_queue_url)."
  value       = local.events_queue.url
}

output "events_queue" {
  description = "The events queue (arn, url), for another fleet's module to share (its events_queue input)."
  value       = local.events_queue
}

output "controller_instance_profile" {
  description = "Instance profile for the control VM running llm-autoscaler (null when the role is another module's)."
  value       = local.owns_role ? aws_iam_instance_profile.controller[0].name : null
}

output "controller_role_name" {
  description = "The daemon's role, for another fleet's module to grant its calls to (its controller_role_name input)."
  value       = local.controller_role
}

output "policy_pools_toml" {
  description = "The pools section of an llm-autoscaler policy for this fleet."
  value       = <<-EOT
    [[fleets.pools]]
    name = "on-demand"
    asg_name = "${aws_autoscaling_group.on_demand.name}"
    market = "on-demand"
    instance_types = [{ type = "${var.instance_types[0].type}", weight_units = ${var.instance_types[0].weight_units} }]
    warm_pool = { min_size = ${var.warm_pool_min_size}, max_prepared_units = ${local.warm_pool_max_prepared} }

    [[fleets.pools]]
    name = "spot"
    asg_name = "${aws_autoscaling_group.spot.name}"
    market = "spot"
    instance_types = [${join(", ", [for t in var.instance_types : "{ type = \"${t.type}\", weight_units = ${t.weight_units} }"])}]
  EOT
}

output "ha_lease_table" {
  description = "DynamoDB table of the HA pair's leader lease ([global.ha] table); null without ha_lease."
  value       = var.ha_lease ? aws_dynamodb_table.lease[0].name : null
}

output "policy_fleet_bounds_toml" {
  description = "The fleet keys an llm-autoscaler policy needs to agree with the groups: on_demand_base_units below the on-demand group's MinSize is rejected by AWS."
  value       = <<-EOT
    max_units = ${var.max_units}
    on_demand_base_units = ${var.on_demand_min_units}
  EOT
}

output "events_dlq_url" {
  description = "Dead-letter queue of event messages the daemon could not read (after the drain timeout plus 15 minutes of receives); null when the queue is another module's."
  value       = local.owns_queue ? aws_sqs_queue.events_dlq[0].url : null
}

output "ready_hook_command" {
  description = "Shell lines that install a systemd oneshot unit completing the launch lifecycle hook at every boot once the inference server answers (an instance leaving the warm pool passes the hook again). Appended to user_data unless ready_hook_in_user_data = false: then run them from your own cloud-init. Need the AWS CLI, curl and systemd on the AMI."
  value       = local.ready_hook_command
}
