#!/usr/bin/env bash
# Applies and destroys terraform/examples/single-fleet against moto (AWS's wire protocol on
# loopback): the module's resources must create, read back and delete cleanly. moto accepts
# more than AWS does (docs/reliability.md); this proves the module is well-formed and
# self-consistent, not that AWS would take every value.
# Usage: scripts/terraform-moto.sh http://127.0.0.1:PORT   (scripts/test.sh passes its moto)
set -euo pipefail
cd "$(dirname "$0")/.."
moto=${1:?usage: scripts/terraform-moto.sh MOTO_URL}
mirror=$(find /opt /usr/local/share /usr/share -maxdepth 3 -type d -name registry.terraform.io 2>/dev/null | head -n 1 || true)
if ! command -v terraform >/dev/null || [ -z "$mirror" ]; then
  echo "terraform or its offline provider mirror not found: skipped"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r terraform "$work/"
tfrc="$work/tfrc"
printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n    include = ["registry.terraform.io/*/*"]\n  }\n}\ndisable_checkpoint = true\n' "$(dirname "$mirror")" > "$tfrc"
export TF_CLI_CONFIG_FILE="$tfrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
override() { # override <example dir>: every service the module uses goes to moto (an
  # override file: the example stays as a user would apply it)
  {
    echo 'provider "aws" {'
    echo '  access_key = "testing"'
    echo '  secret_key = "testing"'
    echo '  skip_credentials_validation = true'
    echo '  skip_metadata_api_check     = true'
    echo '  skip_requesting_account_id  = true'
    echo '  endpoints {'
    for svc in autoscaling cloudwatch dynamodb ec2 events iam sqs sts; do echo "    $svc = \"$moto\""; done
    echo '  }'
    echo '}'
  } > "$1/moto_override.tf"
}
py() { AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 MOTO="$moto" .venv/bin/python -c "$1"; }
apply() { # apply <example> <-var …>…: apply, then the caller checks, then destroy()
  local dir="$work/terraform/examples/$1"; shift
  override "$dir"
  terraform -chdir="$dir" init -input=false -no-color >/dev/null
  terraform -chdir="$dir" apply -auto-approve -input=false -no-color "$@" > "$work/apply.log" 2>&1 \
    || { tail -40 "$work/apply.log"; exit 1; }
  echo "$(basename "$dir"): $(grep -E '^Apply complete' "$work/apply.log")"
}
destroy() { # destroy <example> <-var …>…
  local dir="$work/terraform/examples/$1"; shift
  terraform -chdir="$dir" destroy -auto-approve -input=false -no-color "$@" > "$work/destroy.log" 2>&1 \
    || { tail -40 "$work/destroy.log"; exit 1; }
  echo "$(basename "$dir"): $(grep -E '^Destroy complete' "$work/destroy.log")"
}
start=$SECONDS
# One of moto's own AMIs.
ami=$(py "import boto3, os; print(boto3.client('ec2', endpoint_url=os.environ['MOTO']).describe_images(Owners=['amazon'])['Images'][0]['ImageId'])")

# 1. One fleet in a VPC of its own, with its control VM. moto does not implement
# MonitorInstances (NotImplementedError, HTTP 500, which the provider retries for ~19 min): the
# copy applied here turns the control VM's detailed monitoring off; checkov scans the module as
# shipped, with it on.
control="$work/terraform/modules/control-vm/main.tf"
sed -i 's/^  monitoring             = true$/  monitoring             = false/' "$control"
grep -q '^  monitoring             = false$' "$control" \
  || { echo "control-vm: the monitoring line to turn off for moto was not found" >&2; exit 1; }
one=(-var "ami_id=$ami" -var "control_ami_id=$ami" -var "artifact_bucket=releases")
apply single-fleet "${one[@]}"
# The control VM as launched: IMDSv2 only, the daemon's instance profile, and first-boot user
# data that fetches the artifact and writes the rendered policy.
py "
import base64, boto3, os, sys
ec2 = boto3.client('ec2', endpoint_url=os.environ['MOTO'])
r = ec2.describe_instances(Filters=[{'Name': 'tag:Name', 'Values': ['llama-8b-llm-autoscaler']}, {'Name': 'instance-state-name', 'Values': ['pending', 'running']}])
vms = [i for res in r['Reservations'] for i in res['Instances']]
assert len(vms) == 1, f'one control VM, not {len(vms)}'
vm = vms[0]
assert vm['MetadataOptions']['HttpTokens'] == 'required', vm['MetadataOptions']
assert 'llm-autoscaler' in vm['IamInstanceProfile']['Arn'], vm['IamInstanceProfile']
data = base64.b64decode(ec2.describe_instance_attribute(InstanceId=vm['InstanceId'], Attribute='userData')['UserData']['Value']).decode()
for want in ('s3://releases/', '/etc/llm-autoscaler/policy.toml', 'name = \"llama-8b\"', 'install.sh --start'):
    assert want in data, want
print('control VM: IMDSv2 only, instance profile, user data with the artifact and the policy')
"
terraform -chdir="$work/terraform/examples/single-fleet" output -raw policy_pools_toml | grep -q 'max_prepared_units = 4' \
  || { echo "policy_pools_toml lacks the warm pool's max_prepared_units" >&2; exit 1; }
# The policy the control VM gets, rendered from the module's outputs, is one `check` accepts.
terraform -chdir="$work/terraform/examples/single-fleet" output -raw policy_toml > "$work/policy.toml"
"${LLM_AUTOSCALER_BIN:-${CARGO_TARGET_DIR:-target}/debug/llm-autoscaler}" check --config "$work/policy.toml" > "$work/check.out"
head -n 1 "$work/check.out"
destroy single-fleet "${one[@]}"

# 2. Two fleets, one daemon, in an existing VPC: one queue, one role, one lease table.
net=$(py "
import boto3, os
ec2 = boto3.client('ec2', endpoint_url=os.environ['MOTO'])
vpc = ec2.create_vpc(CidrBlock='10.50.0.0/16')['Vpc']['VpcId']
subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f'10.50.{i}.0/24', AvailabilityZone=z)['Subnet']['SubnetId'] for i, z in enumerate(['us-east-1a', 'us-east-1b'])]
sg = ec2.create_security_group(GroupName='gpu-two-fleets', Description='gpu', VpcId=vpc)['GroupId']
print('[\"' + '\",\"'.join(subnets) + '\"]', sg)")
subnets=${net% *}; sg=${net#* }
vars=(-var "ami_id=$ami" -var "subnet_ids=$subnets" -var "gpu_security_group_id=$sg")
apply two-fleets "${vars[@]}"
queue_arn=$(terraform -chdir="$work/terraform/examples/two-fleets" output -raw policy_global_toml >/dev/null && py "
import boto3, os
sqs = boto3.client('sqs', endpoint_url=os.environ['MOTO'])
url = sqs.get_queue_url(QueueName='llama-8b-events')['QueueUrl']
print(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['QueueArn'])['Attributes']['QueueArn'])")
py "
import boto3, os
ev = boto3.client('events', endpoint_url=os.environ['MOTO'])
rules = [r['Name'] for r in ev.list_rules(NamePrefix='llm-autoscaler-')['Rules']]
targets = {t['Arn'] for r in rules for t in ev.list_targets_by_rule(Rule=r)['Targets']}
sqs = boto3.client('sqs', endpoint_url=os.environ['MOTO'])
queues = [u for u in sqs.list_queues().get('QueueUrls', []) if 'qwen-32b' in u]
assert sorted(rules) == sorted(['llm-autoscaler-llama-8b-spot-interruption', 'llm-autoscaler-llama-8b-rebalance', 'llm-autoscaler-llama-8b-state-change', 'llm-autoscaler-llama-8b-lifecycle', 'llm-autoscaler-qwen-32b-lifecycle']), rules
assert targets == {'$queue_arn'}, targets
assert queues == [], queues
print('two fleets: 5 rules, one shared queue, no second queue')"
destroy two-fleets "${vars[@]}"
echo "terraform against moto: $((SECONDS - start)) s"
