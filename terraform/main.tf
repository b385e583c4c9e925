# GPU fleet for llm-autoscaler: one on-demand and one spot Auto Scaling Group from one launch
# template, interruption and lifecycle events routed to an SQS queue, and the control VM's IAM
# role allowed exactly the calls the daemon makes. Desired capacity belongs to the daemon:
# Terraform sets the bounds and ignores desired_capacity afterwards.

locals {
  tags = merge(var.tags, { "llm-autoscaler/fleet" = var.name })
}

resource "aws_launch_template" "gpu" {
  name_prefix   = "${var.name}-"
  image_id      = var.ami_id
  instance_type = var.instance_types[0].type
  user_data     = var.user_data == "" ? null : base64encode(var.user_data)

  vpc_security_group_ids = var.security_group_ids

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = 200
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = local.tags
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "on_demand" {
  name                      = "${var.name}-on-demand"
  vpc_zone_identifier       = var.subnet_ids
  min_size                  = var.on_demand_min_units
  max_size                  = var.max_units
  desired_capacity          = var.on_demand_min_units
  health_check_type         = "EC2"
  default_instance_warmup   = 120
  wait_for_capacity_timeout = "0"

  launch_template {
    id      = aws_launch_template.gpu.id
    version = "$Latest"
  }

  warm_pool {
    pool_state                  = "Stopped"
    min_size                    = var.warm_pool_min_size
    max_group_prepared_capacity = var.max_units
    instance_reuse_policy {
      reuse_on_scale_in = true
    }
  }

  # Scale-in waits for the daemon to drain the instance and complete the action.
  initial_lifecycle_hook {
    name                 = "drain"
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    default_result       = "CONTINUE"
    heartbeat_timeout    = var.drain_timeout_secs
  }

  dynamic "tag" {
    for_each = merge(local.tags, { "llm-autoscaler/market" = "on-demand" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

resource "aws_autoscaling_group" "spot" {
  name                      = "${var.name}-spot"
  vpc_zone_identifier       = var.subnet_ids
  min_size                  = 0
  max_size                  = var.max_units
  desired_capacity          = 0
  capacity_rebalance        = true
  health_check_type         = "EC2"
  default_instance_warmup   = 120
  wait_for_capacity_timeout = "0"

  mixed_instances_policy {
    instances_distribution {
      on_demand_base_capacity                  = 0
      on_demand_percentage_above_base_capacity = 0
      spot_allocation_strategy                 = "price-capacity-optimized"
    }
    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.gpu.id
        version            = "$Latest"
      }
      dynamic "override" {
        for_each = var.instance_types
        content {
          instance_type     = override.value.type
          weighted_capacity = tostring(override.value.weight_units)
        }
      }
    }
  }

  initial_lifecycle_hook {
    name                 = "drain"
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    default_result       = "CONTINUE"
    heartbeat_timeout    = var.drain_timeout_secs
  }

  dynamic "tag" {
    for_each = merge(local.tags, { "llm-autoscaler/market" = "spot" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

# Spot interruption warnings, rebalance recommendations, lifecycle actions and instance state
# changes → one queue the daemon consumes (deleting a message only after handling it).
resource "aws_sqs_queue" "events" {
  name                       = "${var.name}-events"
  message_retention_seconds  = 3600
  visibility_timeout_seconds = 60
  sqs_managed_sse_enabled    = true
  tags                       = local.tags
}

locals {
  event_patterns = {
    spot-interruption = { source = ["aws.ec2"], "detail-type" = ["EC2 Spot Instance Interruption Warning"] }
    rebalance         = { source = ["aws.ec2"], "detail-type" = ["EC2 Instance Rebalance Recommendation"] }
    lifecycle = {
      source        = ["aws.autoscaling"]
      "detail-type" = ["EC2 Instance-terminate Lifecycle Action"]
      detail        = { AutoScalingGroupName = [aws_autoscaling_group.on_demand.name, aws_autoscaling_group.spot.name] }
    }
    state-change = { source = ["aws.ec2"], "detail-type" = ["EC2 Instance State-change Notification"] }
  }
}

resource "aws_cloudwatch_event_rule" "events" {
  for_each      = local.event_patterns
  name          = "${var.name}-${each.key}"
  event_pattern = jsonencode(each.value)
  tags          = local.tags
}

resource "aws_cloudwatch_event_target" "events" {
  for_each = aws_cloudwatch_event_rule.events
  rule     = each.value.name
  arn      = aws_sqs_queue.events.arn
}

data "aws_iam_policy_document" "events_to_queue" {
  statement {
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for r in aws_cloudwatch_event_rule.events : r.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy    = data.aws_iam_policy_document.events_to_queue.json
}

# The control VM: exactly the calls llm-autoscaler makes.
data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "controller" {
  statement {
    sid = "ReadFleet"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeScalingActivities",
      "ec2:DescribeInstances",
      "ec2:DescribeSpotPriceHistory",
      "cloudwatch:GetMetricData",
    ]
    resources = ["*"] # these Describe/Get calls do not support resource-level permissions
  }
  statement {
    sid = "SteerFleet"
    actions = [
      "autoscaling:SetDesiredCapacity",
      "autoscaling:PutWarmPool",
      "autoscaling:CompleteLifecycleAction",
    ]
    resources = [aws_autoscaling_group.on_demand.arn, aws_autoscaling_group.spot.arn]
  }
  statement {
    sid       = "ConsumeEvents"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.events.arn]
  }
  dynamic "statement" {
    for_each = var.ha_lease ? [1] : []
    content {
      sid       = "HoldLeaderLease"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
      resources = [aws_dynamodb_table.lease[0].arn]
    }
  }
  dynamic "statement" {
    for_each = length(var.metric_queue_arns) > 0 ? [1] : []
    content {
      sid       = "ReadRequestQueues"
      actions   = ["sqs:GetQueueAttributes"]
      resources = var.metric_queue_arns
    }
  }
}

# The HA pair's leader lease: one item per pair, written only by conditional PutItem
# (src/aws/lease.rs). On demand: a few requests per tick cost cents a month.
resource "aws_dynamodb_table" "lease" {
  count        = var.ha_lease ? 1 : 0
  name         = "${var.name}-llm-autoscaler-lease"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "lease"
  attribute {
    name = "lease"
    type = "S"
  }
  server_side_encryption {
    enabled = true
  }
  point_in_time_recovery {
    enabled = true
  }
  tags = local.tags
}

resource "aws_iam_role" "controller" {
  name               = "${var.name}-llm-autoscaler"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "controller" {
  name   = "llm-autoscaler"
  role   = aws_iam_role.controller.id
  policy = data.aws_iam_policy_document.controller.json
}

resource "aws_iam_instance_profile" "controller" {
  name = "${var.name}-llm-autoscaler"
  role = aws_iam_role.controller.name
}
