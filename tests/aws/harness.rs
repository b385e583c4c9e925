//! The AWS test bench: `moto_server` (a real AWS wire-protocol endpoint on 127.0.0.1), a
//! fault-injecting proxy in front of it, and a fake vLLM metrics endpoint — all on loopback.
//!
//! moto is the one `scripts/test.sh` starts (`LLM_AUTOSCALER_MOTO=http://127.0.0.1:PORT`);
//! without it, the bench starts its own from `.venv/bin/moto_server` under `timeout`, so it ends
//! by itself. The proxy covers what moto lacks: `CompleteLifecycleAction` (recorded and
//! answered), failed scaling activities (served from a script), throttling, 5xx and validation
//! answers (scripted per API action, or per action and group, then passed through).
//!
//! It also enforces rules moto does not. Real AWS rejects `SetDesiredCapacity` outside the
//! group's `MinSize`/`MaxSize` with `ValidationError: New SetDesiredCapacity value N is above
//! max value M for the AutoScalingGroup.` (the text as AWS returns it, quoted in
//! kubernetes/autoscaler#943; "below min value" symmetrically), where moto accepts any value. The
//! proxy reads the group's bounds from moto and answers so. And `PutWarmPool` is checked against
//! the API reference (PutWarmPool / WarmPoolConfiguration: `MinSize` ≥ 0,
//! `MaxGroupPreparedCapacity` ≥ −1, `PoolState` one of Stopped, Running, Hibernated) and the
//! user guide's limit that a warm pool cannot be added to a group with a mixed instances policy
//! or that launches spot instances — moto accepts all of these. Once a group has a launch
//! lifecycle hook (`PutLifecycleHook`, `autoscaling:EC2_INSTANCE_LAUNCHING`), each instance it
//! launches afterwards is described in `Pending:Wait` until `CompleteLifecycleAction` names it,
//! as AWS does; moto puts every new instance in service at once. Likewise, with a terminate hook
//! (`autoscaling:EC2_INSTANCE_TERMINATING`), an instance a scale-in removes stays described in
//! `Terminating:Wait` until its action is completed, where moto drops it at once. And
//! `CompleteLifecycleAction` is accepted only for an action that waits, once, with its token
//! ([`lifecycle_token`]) when one is given, as AWS has it (`lifecycle_refusal`); moto accepts
//! every call.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_autoscaling::config::Credentials;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[path = "iam_sim.rs"]
mod iam_sim;

/// The moto endpoint for this test binary.
pub fn moto() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Some(url) = std::env::var("LLM_AUTOSCALER_MOTO").ok().filter(|u| !u.is_empty()) {
            return url;
        }
        let bin = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/moto_server");
        assert!(
            std::path::Path::new(bin).exists(),
            "moto_server not found at {bin}: run scripts/test.sh (it installs moto in .venv and starts it), \
             or start one and set LLM_AUTOSCALER_MOTO=http://127.0.0.1:PORT"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // `timeout` bounds its life: nothing outlives the test run by more than 15 minutes.
        static CHILD: OnceLock<std::sync::Mutex<std::process::Child>> = OnceLock::new();
        let child = Command::new("timeout")
            .args(["900", bin, "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        CHILD.get_or_init(|| std::sync::Mutex::new(child));
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return url;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not listen on {url} within 10 s");
    })
    .clone()
}

/// SDK configuration pointed at `endpoint`, with static test credentials and no IMDS.
pub async fn sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(50)),
        )
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await
}

/// A scripted answer in place of the real one.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// HTTP 400 `Throttling`.
    Throttle,
    /// HTTP 500 `InternalFailure`.
    ServerError,
    /// HTTP 400 `ValidationError` (what AWS answers, e.g., outside a group's bounds).
    Validation,
    /// HTTP 403 `AccessDenied` (the role lacks the action).
    AccessDenied,
}

/// What the proxy saw and what it is told to do.
#[derive(Default)]
pub struct ProxyState {
    /// Faults to answer, per API action, in order; then requests pass through.
    pub faults: BTreeMap<String, VecDeque<Fault>>,
    /// Requests per API action (every attempt).
    pub attempts: BTreeMap<String, u32>,
    /// Requests per API action that reached moto (or were answered for it) successfully.
    pub passed: BTreeMap<String, u32>,
    /// Every `CompleteLifecycleAction` call: its form parameters.
    pub lifecycle_calls: Vec<BTreeMap<String, String>>,
    /// `CompleteLifecycleAction` calls accepted: their form parameters.
    pub completed_lifecycle: Vec<BTreeMap<String, String>>,
    /// `CompleteLifecycleAction` calls refused (no action of that instance or token waits):
    /// the message answered.
    pub rejected_lifecycle: Vec<String>,
    /// Failed activities to report per group (moto reports none).
    pub failed_activities: BTreeMap<String, u32>,
    /// Form parameters of every `SetDesiredCapacity` that passed.
    pub set_desired: Vec<(String, u32)>,
    /// `SetDesiredCapacity` calls rejected for the group's bounds: (group, value).
    pub rejected: Vec<(String, i64)>,
    /// `PutWarmPool` calls rejected: (group, why).
    pub rejected_warm_pools: Vec<(String, String)>,
    /// Groups with a launch lifecycle hook, and the instances they had when it was put: any
    /// instance launched since is shown in `Pending:Wait` until its action is completed.
    pub launch_hooks: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// Instances whose lifecycle action was completed.
    pub completed_instances: std::collections::BTreeSet<String>,
    /// Groups with a terminate lifecycle hook, each with the instances last described in it
    /// (id → its `<member>` element): one gone since is shown in `Terminating:Wait` until its
    /// action is completed.
    pub terminate_hooks: BTreeMap<String, BTreeMap<String, String>>,
    /// Instances held in `Terminating:Wait`, by group (id → its `<member>` element).
    pub terminating: BTreeMap<String, BTreeMap<String, String>>,
}

/// The proxy: an endpoint on loopback that forwards to moto.
pub struct Proxy {
    /// Its URL.
    pub url: String,
    /// Shared state.
    pub state: Arc<Mutex<ProxyState>>,
}

impl Proxy {
    /// Starts one in front of `upstream`.
    pub async fn start(upstream: String) -> Proxy {
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let st = state.clone();
        let client = reqwest::Client::new();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (st, client, upstream) = (st.clone(), client.clone(), upstream.clone());
                async move { handle(st, client, upstream, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Proxy {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// Answers the next requests of `action` on Auto Scaling Group `group` with `faults`.
    pub fn inject_for_group(&self, action: &str, group: &str, faults: &[Fault]) {
        self.inject(&format!("{action}:{group}"), faults);
    }

    /// Answers the next requests of `action` with `faults`, in order.
    pub fn inject(&self, action: &str, faults: &[Fault]) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(action.into())
            .or_default()
            .extend(faults.iter().cloned());
    }

    /// Reads the state.
    pub fn with<T>(&self, f: impl FnOnce(&ProxyState) -> T) -> T {
        f(&self.state.lock().unwrap())
    }
}

fn form(body: &[u8]) -> BTreeMap<String, String> {
    url_decode_pairs(std::str::from_utf8(body).unwrap_or_default())
}

fn url_decode_pairs(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "text/xml")], body).into_response()
}

fn validation_error(message: &str) -> Response {
    xml(
        StatusCode::BAD_REQUEST,
        format!("<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>{message}</Message></Error><RequestId>v</RequestId></ErrorResponse>"),
    )
}

/// Why AWS would refuse this `PutWarmPool`, if it would.
async fn warm_pool_refusal(
    params: &BTreeMap<String, String>,
    client: &reqwest::Client,
    upstream: &str,
    group: &str,
) -> Option<String> {
    let int = |k: &str| params.get(k).and_then(|v| v.parse::<i64>().ok());
    if int("MinSize").is_some_and(|v| v < 0) {
        return Some("1 validation error detected: Value at 'minSize' failed to satisfy constraint: Member must have value greater than or equal to 0".into());
    }
    if int("MaxGroupPreparedCapacity").is_some_and(|v| v < -1) {
        return Some("1 validation error detected: Value at 'maxGroupPreparedCapacity' failed to satisfy constraint: Member must have value greater than or equal to -1".into());
    }
    if let Some(state) = params.get("PoolState") {
        if !["Stopped", "Running", "Hibernated"].contains(&state.as_str()) {
            return Some(format!("1 validation error detected: Value '{state}' at 'poolState' failed to satisfy constraint: Member must satisfy enum value set: [Stopped, Running, Hibernated]"));
        }
    }
    let description = describe_group(client, upstream, group).await?;
    description.contains("<MixedInstancesPolicy>").then(|| {
        "You can't add a warm pool to an Auto Scaling group that has a mixed instances policy or that launches Spot Instances.".to_string()
    })
}

/// The describe answer with each instance a launch hook holds shown in `Pending:Wait`: launched
/// after its group's hook was put, its action not completed yet.
fn hold_launches(
    text: &str,
    hooks: &BTreeMap<String, std::collections::BTreeSet<String>>,
    completed: &std::collections::BTreeSet<String>,
) -> String {
    // Groups' chunks start at their name (instances carry no group name of their own).
    let mut chunks = text.split("<AutoScalingGroupName>");
    let mut out = chunks.next().unwrap_or_default().to_string();
    for chunk in chunks {
        out.push_str("<AutoScalingGroupName>");
        let group = chunk.split('<').next().unwrap_or_default();
        let Some(before) = hooks.get(group) else {
            out.push_str(chunk);
            continue;
        };
        let members: Vec<String> = chunk
            .split("<member>")
            .map(|m| {
                let id = m
                    .split("<InstanceId>")
                    .nth(1)
                    .and_then(|t| t.split('<').next());
                match id {
                    Some(id) if !before.contains(id) && !completed.contains(id) => m.replace(
                        "<LifecycleState>InService</LifecycleState>",
                        "<LifecycleState>Pending:Wait</LifecycleState>",
                    ),
                    _ => m.to_string(),
                }
            })
            .collect();
        out.push_str(&members.join("<member>"));
    }
    out
}

/// Each instance `<member>` element of a describe answer (for one group), by id.
fn instance_members(text: &str) -> BTreeMap<String, String> {
    text.split("<member>")
        .filter_map(|m| {
            let id = m
                .split("<InstanceId>")
                .nth(1)?
                .split('<')
                .next()?
                .to_string();
            let body = &m[..m.find("</member>")?];
            Some((id, format!("<member>{body}</member>")))
        })
        .collect()
}

/// The describe answer with each instance a terminate hook holds added back in
/// `Terminating:Wait`: gone from its group since the last answer, its action not completed.
fn hold_terminations(text: &str, st: &mut ProxyState) -> String {
    let mut chunks = text.split("<AutoScalingGroupName>");
    let mut out = chunks.next().unwrap_or_default().to_string();
    for chunk in chunks {
        out.push_str("<AutoScalingGroupName>");
        let group = chunk.split('<').next().unwrap_or_default().to_string();
        let Some(last) = st.terminate_hooks.get(&group).cloned() else {
            out.push_str(chunk);
            continue;
        };
        let now = instance_members(chunk);
        let held = st.terminating.entry(group.clone()).or_default();
        for (id, member) in last.iter().filter(|(id, _)| !now.contains_key(*id)) {
            let waiting = member.replace(
                "<LifecycleState>InService</LifecycleState>",
                "<LifecycleState>Terminating:Wait</LifecycleState>",
            );
            held.entry(id.clone()).or_insert(waiting);
        }
        held.retain(|id, _| !st.completed_instances.contains(id));
        let injected: String = held.values().cloned().collect();
        st.terminate_hooks.insert(group, now);
        out.push_str(&chunk.replacen("<Instances>", &format!("<Instances>{injected}"), 1));
    }
    out
}

/// The token of the lifecycle action that holds `instance` in `group`: the one its event
/// carries (AWS's are UUIDs; any text serves, as long as only this one is accepted).
pub fn lifecycle_token(group: &str, instance: &str) -> String {
    format!("{group}/{instance}")
}

/// Why AWS would refuse a `CompleteLifecycleAction`, if it would: only an instance whose
/// action waits — launched since the group's launch hook was put and not completed
/// (`Pending:Wait`), or gone from the group since its terminate hook was put and not completed
/// (`Terminating:Wait`) — can be completed, once, and with its own token when one is given.
/// Otherwise AWS answers `ValidationError: No active Lifecycle Action found with token …`, or
/// `… with instance ID …` when no token is given (both texts as AWS returns them: quoted in
/// spacelift-io/terraform-aws-spacelift-workerpool-on-ec2#197 and convox/rack#2432) — where
/// moto accepts every call.
fn lifecycle_refusal(
    params: &BTreeMap<String, String>,
    group: &str,
    members: &BTreeMap<String, String>,
    s: &ProxyState,
) -> Option<String> {
    let id = params.get("InstanceId").map(String::as_str).unwrap_or("");
    let launching = s
        .launch_hooks
        .get(group)
        .is_some_and(|before| members.contains_key(id) && !before.contains(id));
    let terminating = s
        .terminate_hooks
        .get(group)
        .is_some_and(|last| last.contains_key(id) && !members.contains_key(id))
        || s.terminating.get(group).is_some_and(|h| h.contains_key(id));
    let waits = (launching || terminating) && !s.completed_instances.contains(id);
    match params.get("LifecycleActionToken") {
        Some(token) if !waits || *token != lifecycle_token(group, id) => Some(format!(
            "No active Lifecycle Action found with token {token}"
        )),
        None if !waits => Some(format!(
            "No active Lifecycle Action found with instance ID {id}"
        )),
        _ => None,
    }
}

/// moto's `DescribeAutoScalingGroups` answer for `group`, as text.
async fn describe_group(client: &reqwest::Client, upstream: &str, group: &str) -> Option<String> {
    let body = format!(
        "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1={group}"
    );
    client
        .post(format!("{upstream}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/autoscaling/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// A group's `(MinSize, MaxSize)` as moto holds them. moto does not check signatures; it only
/// reads the service's name from the credential scope.
async fn group_bounds(client: &reqwest::Client, upstream: &str, group: &str) -> Option<(i64, i64)> {
    let text = describe_group(client, upstream, group).await?;
    // The group's own sizes come before its warm pool's (which has a MinSize too).
    let text = text
        .split("<WarmPoolConfiguration>")
        .next()
        .unwrap_or_default();
    let field = |name: &str| -> Option<i64> {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = start + text[start..].find('<')?;
        text[start..end].trim().parse().ok()
    };
    Some((field("MinSize")?, field("MaxSize")?))
}

async fn handle(
    st: Arc<Mutex<ProxyState>>,
    client: reqwest::Client,
    upstream: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // awsQuery services name the action in the form body; JSON ones (SQS) in X-Amz-Target.
    let params = form(&body);
    let action = params.get("Action").cloned().unwrap_or_else(|| {
        headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_string()
    });
    let group = params.get("AutoScalingGroupName").cloned();
    let fault = {
        let mut s = st.lock().unwrap();
        *s.attempts.entry(action.clone()).or_default() += 1;
        let per_group = group
            .as_ref()
            .and_then(|g| s.faults.get_mut(&format!("{action}:{g}")))
            .and_then(VecDeque::pop_front);
        per_group.or_else(|| s.faults.get_mut(&action).and_then(VecDeque::pop_front))
    };
    match fault {
        Some(Fault::Throttle) => {
            return xml(
                StatusCode::BAD_REQUEST,
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>t</RequestId></ErrorResponse>".into(),
            )
        }
        Some(Fault::ServerError) => {
            return xml(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>injected</Message></Error><RequestId>f</RequestId></ErrorResponse>".into(),
            )
        }
        Some(Fault::Validation) => return validation_error("injected validation error"),
        Some(Fault::AccessDenied) => {
            return xml(
                StatusCode::FORBIDDEN,
                format!("<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:sts::123456789012:assumed-role/llm-autoscaler/i-0 is not authorized to perform: {action}</Message></Error><RequestId>d</RequestId></ErrorResponse>"),
            )
        }
        None => {}
    }
    if action == "SetDesiredCapacity" {
        let (group, desired) = (
            group.clone().unwrap_or_default(),
            params
                .get("DesiredCapacity")
                .and_then(|d| d.parse::<i64>().ok())
                .unwrap_or(0),
        );
        if let Some((min, max)) = group_bounds(&client, &upstream, &group).await {
            let rejected = if desired > max {
                Some(format!("New SetDesiredCapacity value {desired} is above max value {max} for the AutoScalingGroup."))
            } else if desired < min {
                Some(format!("New SetDesiredCapacity value {desired} is below min value {min} for the AutoScalingGroup."))
            } else {
                None
            };
            if let Some(message) = rejected {
                st.lock().unwrap().rejected.push((group, desired));
                return validation_error(&message);
            }
        }
    }
    if action == "SimulatePrincipalPolicy" {
        // moto does not serve it: answered here from the principal's policies in moto.
        let iam = aws_sdk_iam::Client::new(&sdk(&upstream).await);
        let (status, body) = iam_sim::answer(&iam, &params).await;
        if status == 200 {
            *st.lock().unwrap().passed.entry(action).or_default() += 1;
        }
        return xml(StatusCode::from_u16(status).unwrap(), body);
    }
    if action == "PutLifecycleHook" {
        // The group's instances when the hook is put: those it holds are the ones that come
        // (launch) or go (terminate) after.
        let group = group.clone().unwrap_or_default();
        let members = describe_group(&client, &upstream, &group)
            .await
            .map(|t| instance_members(&t))
            .unwrap_or_default();
        let mut s = st.lock().unwrap();
        match params.get("LifecycleTransition").map(String::as_str) {
            Some("autoscaling:EC2_INSTANCE_LAUNCHING") => {
                s.launch_hooks.insert(group, members.into_keys().collect());
            }
            Some("autoscaling:EC2_INSTANCE_TERMINATING") => {
                s.terminate_hooks.insert(group, members);
            }
            _ => {}
        }
    }
    if action == "PutWarmPool" {
        let group = group.clone().unwrap_or_default();
        if let Some(why) = warm_pool_refusal(&params, &client, &upstream, &group).await {
            st.lock()
                .unwrap()
                .rejected_warm_pools
                .push((group, why.clone()));
            return validation_error(&why);
        }
    }
    const NS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";
    match action.as_str() {
        "CompleteLifecycleAction" => {
            let group = group.unwrap_or_default();
            let members = describe_group(&client, &upstream, &group)
                .await
                .map(|t| instance_members(&t))
                .unwrap_or_default();
            let mut s = st.lock().unwrap();
            s.lifecycle_calls.push(params.clone());
            if let Some(message) = lifecycle_refusal(&params, &group, &members, &s) {
                s.rejected_lifecycle.push(message.clone());
                return validation_error(&message);
            }
            if let Some(id) = params.get("InstanceId") {
                s.completed_instances.insert(id.clone());
            }
            s.completed_lifecycle.push(params);
            *s.passed.entry(action).or_default() += 1;
            return xml(
                StatusCode::OK,
                format!("<CompleteLifecycleActionResponse xmlns=\"{NS}\"><CompleteLifecycleActionResult/><ResponseMetadata><RequestId>c</RequestId></ResponseMetadata></CompleteLifecycleActionResponse>"),
            );
        }
        "DescribeScalingActivities" => {
            let group = params
                .get("AutoScalingGroupName")
                .cloned()
                .unwrap_or_default();
            let mut s = st.lock().unwrap();
            let n = s.failed_activities.get(&group).copied().unwrap_or(0);
            *s.passed.entry(action).or_default() += 1;
            let members: String = (0..n)
                .map(|k| format!(
                    "<member><ActivityId>{group}-failed-{k}</ActivityId><AutoScalingGroupName>{group}</AutoScalingGroupName>\
                     <Description>Launching a new EC2 instance.  Status Reason: InsufficientInstanceCapacity</Description>\
                     <Cause>test</Cause><StartTime>2026-11-30T07:00:00Z</StartTime><StatusCode>Failed</StatusCode>\
                     <StatusMessage>InsufficientInstanceCapacity</StatusMessage><Progress>100</Progress></member>"
                ))
                .collect();
            return xml(
                StatusCode::OK,
                format!("<DescribeScalingActivitiesResponse xmlns=\"{NS}\"><DescribeScalingActivitiesResult><Activities>{members}</Activities></DescribeScalingActivitiesResult><ResponseMetadata><RequestId>a</RequestId></ResponseMetadata></DescribeScalingActivitiesResponse>"),
            );
        }
        _ => {}
    }
    let url = format!(
        "{upstream}{}",
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut req = client.request(method, url).body(body.clone());
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/xml")
        .to_string();
    let mut bytes = resp.bytes().await.unwrap_or_default();
    if status.is_success() && action == "DescribeAutoScalingGroups" {
        let mut s = st.lock().unwrap();
        let mut text = String::from_utf8_lossy(&bytes).to_string();
        if !s.launch_hooks.is_empty() {
            text = hold_launches(&text, &s.launch_hooks, &s.completed_instances);
        }
        if !s.terminate_hooks.is_empty() {
            text = hold_terminations(&text, &mut s);
        }
        bytes = text.into();
    }
    if status.is_success() {
        let mut s = st.lock().unwrap();
        *s.passed.entry(action.clone()).or_default() += 1;
        if action == "SetDesiredCapacity" {
            let p = form(&body);
            s.set_desired.push((
                p.get("AutoScalingGroupName").cloned().unwrap_or_default(),
                p.get("DesiredCapacity")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0),
            ));
        }
    }
    (status, [("content-type", ctype)], bytes).into_response()
}

/// A fake vLLM `/metrics` endpoint on loopback: the gauges and counters it serves are set by
/// the test.
pub struct FakeVllm {
    /// Its address.
    pub addr: SocketAddr,
    /// `vllm:num_requests_waiting`.
    pub waiting: Arc<AtomicU32>,
    /// `vllm:num_requests_running`.
    pub running: Arc<AtomicU32>,
    /// `vllm:request_success_total` (a counter); the token counters follow it at
    /// [`PROMPT_TOKENS_PER_REQUEST`] and [`GENERATED_TOKENS_PER_REQUEST`].
    pub finished: Arc<AtomicU32>,
}

/// Prompt tokens per finished request in the fake's `vllm:prompt_tokens_total`.
pub const PROMPT_TOKENS_PER_REQUEST: u64 = 500;
/// Generated tokens per finished request in the fake's `vllm:generation_tokens_total`.
pub const GENERATED_TOKENS_PER_REQUEST: u64 = 200;

impl FakeVllm {
    /// Starts one.
    pub async fn start() -> FakeVllm {
        let waiting = Arc::new(AtomicU32::new(0));
        let running = Arc::new(AtomicU32::new(0));
        let finished = Arc::new(AtomicU32::new(0));
        let (w, r, f) = (waiting.clone(), running.clone(), finished.clone());
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let (w, r, f) = (
                    w.load(Ordering::SeqCst),
                    r.load(Ordering::SeqCst),
                    f.load(Ordering::SeqCst),
                );
                async move {
                    format!(
                        "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{{model_name=\"m\"}} {w}\n\
                         # TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{model_name=\"m\"}} {r}\n\
                         # TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc{{model_name=\"m\"}} 0.5\n\
                         # TYPE vllm:request_success_total counter\nvllm:request_success_total{{model_name=\"m\",finished_reason=\"stop\"}} {f}\n\
                         # TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total{{model_name=\"m\"}} {p}\n\
                         # TYPE vllm:generation_tokens_total counter\nvllm:generation_tokens_total{{model_name=\"m\"}} {g}\n",
                        p = f as u64 * PROMPT_TOKENS_PER_REQUEST,
                        g = f as u64 * GENERATED_TOKENS_PER_REQUEST,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeVllm {
            addr,
            waiting,
            running,
            finished,
        }
    }
}
