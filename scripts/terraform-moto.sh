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
example="$work/terraform/examples/single-fleet"
# Every service the module uses goes to moto (an override file: the example stays as a user
# would apply it).
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
} > "$example/moto_override.tf"
# One of moto's own AMIs.
ami=$(AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing .venv/bin/python -c "
import boto3
ec2 = boto3.client('ec2', region_name='us-east-1', endpoint_url='$moto')
print(ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId'])")
terraform -chdir="$example" init -input=false -no-color >/dev/null
start=$SECONDS
terraform -chdir="$example" apply -auto-approve -input=false -no-color -var "ami_id=$ami" > "$work/apply.log" 2>&1 \
  || { tail -40 "$work/apply.log"; exit 1; }
grep -E "^Apply complete" "$work/apply.log"
# The outputs the policy is written from.
terraform -chdir="$example" output -raw policy_pools_toml | grep -q 'max_prepared_units = 4' \
  || { echo "policy_pools_toml lacks the warm pool's max_prepared_units" >&2; exit 1; }
terraform -chdir="$example" destroy -auto-approve -input=false -no-color -var "ami_id=$ami" > "$work/destroy.log" 2>&1 \
  || { tail -40 "$work/destroy.log"; exit 1; }
grep -E "^Destroy complete" "$work/destroy.log"
echo "apply + destroy: $((SECONDS - start)) s"
