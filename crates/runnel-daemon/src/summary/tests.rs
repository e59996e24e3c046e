//! Job summaries: the job id read from Gitea's runtime token, summaries mapped onto step slots
//! in the order they were written, and uploads against a stand-in endpoint that takes one
//! slot and refuses the next the way Gitea 1.27 does (HTTP 400 with its reason).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::*;

fn part(index: usize, step: &str, markdown: &str) -> SummaryPart {
    SummaryPart {
        index,
        step: step.to_owned(),
        markdown: markdown.to_owned(),
    }
}

fn jwt(claims: &str) -> String {
    let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    format!(
        "{}.{}.c2lnbmF0dXJl",
        encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        encode(claims)
    )
}

#[test]
fn the_job_id_comes_from_the_runtime_tokens_claims() {
    // The claims Gitea 1.27.3 signs (seen in a job).
    let token = jwt(
        r#"{"exp":1795507956,"nbf":1795493556,"scp":"Actions.Results:35:55","TaskID":46,"RunID":35,"JobID":55,"ac":"[]"}"#,
    );
    assert_eq!(job_id_from_runtime_token(&token), Some(55));
    // Padding some encoders add is tolerated.
    let mut pieces: Vec<&str> = token.split('.').collect();
    let padded = format!("{}==", pieces[1]);
    pieces[1] = &padded;
    assert_eq!(job_id_from_runtime_token(&pieces.join(".")), Some(55));
    assert_eq!(job_id_from_runtime_token(&jwt(r#"{"TaskID":46}"#)), None);
    assert_eq!(job_id_from_runtime_token(&jwt(r#"{"JobID":0}"#)), None);
    assert_eq!(job_id_from_runtime_token("not-a-jwt"), None);
    assert_eq!(job_id_from_runtime_token(""), None);
}

#[test]
fn slots_keep_the_order_the_summaries_were_written_in() {
    let parts = vec![
        part(0, "Pre setup", "pre"),
        part(0, "setup", "main\n"),
        part(2, "report", "## Report"),
        part(0, "Post setup", "post"),
        part(7, "beyond", "clamped"),
    ];
    let slots = slots(parts, 4);
    let shape: Vec<(usize, &str, usize)> = slots
        .iter()
        .map(|s| (s.index, s.markdown.as_str(), s.parts.len()))
        .collect();
    assert_eq!(
        shape,
        [
            (0, "pre\nmain\n", 2),
            (2, "## Report\npost\n", 2),
            (3, "clamped\n", 1)
        ]
    );
    assert_eq!(slots[1].parts[1].step, "Post setup");
}

/// What the stand-in endpoint saw: method, path, content type, authorization, body.
type Seen = Arc<Mutex<Vec<[String; 5]>>>;

/// Serves PUTs like Gitea 1.27.3: `steps/1` is over the job's total (400), the rest is taken.
async fn stand_in() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let address = listener.local_addr().expect("local address");
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let log = log.clone();
                async move {
                    let header = |name| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let (method, path) = (request.method().to_string(), request.uri().to_string());
                    let (content_type, auth) = (header("content-type"), header("authorization"));
                    let body = request
                        .into_body()
                        .collect()
                        .await
                        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                        .unwrap_or_default();
                    let refused = path.contains("/steps/1/");
                    log.lock()
                        .expect("log lock")
                        .push([method, path, content_type, auth, body]);
                    let (status, text) = if refused {
                        (400, "job summary aggregate size exceeded")
                    } else {
                        (200, r#"{"message":"success"}"#)
                    };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from(text)))
                            .expect("a valid response"),
                    )
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (format!("http://{address}"), seen)
}

fn target(base_url: &str, steps: usize) -> SummaryTarget {
    let tls = runnel_protocol::tls_client_config(false).expect("TLS settings");
    let uploads = SummaryUploads::new(base_url, tls);
    let mut fields = prost_types::Struct::default();
    for (key, value) in [
        ("run_id", "35".to_owned()),
        ("token", "task-token".to_owned()),
        ("gitea_runtime_token", jwt(r#"{"RunID":35,"JobID":55}"#)),
    ] {
        fields.fields.insert(
            key.to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(value)),
            },
        );
    }
    uploads
        .target(&TaskContext::new(Some(&fields)), steps)
        .unwrap_or_else(|reason| panic!("{reason}"))
}

#[tokio::test]
async fn each_slot_is_put_with_the_task_token_and_a_refused_one_is_logged_instead() {
    let (base_url, seen) = stand_in().await;
    let target = target(&base_url, 3);
    let uploaded = target
        .upload(vec![
            part(0, "first", "# First"),
            part(1, "second", "too much"),
            part(2, "third", "- third\n"),
        ])
        .await;
    let seen = seen.lock().expect("log lock").clone();
    let job = "/api/actions_pipeline/_apis/pipelines/workflows/35/jobs/55";
    let put = |index: usize, body: &str| {
        [
            "PUT".to_owned(),
            format!("{job}/steps/{index}/summary"),
            "text/markdown; charset=utf-8".to_owned(),
            "Bearer task-token".to_owned(),
            body.to_owned(),
        ]
    };
    assert_eq!(
        seen,
        [
            put(0, "# First\n"),
            put(1, "too much\n"),
            put(2, "- third\n")
        ]
    );
    assert_eq!(uploaded.left, [part(1, "second", "too much")]);
    assert_eq!(
        uploaded.row.as_deref(),
        Some(
            format!(
                "Warning: uploading the job summary failed: PUT {base_url}{job}/steps/1/summary answered HTTP 400 (job summary aggregate size exceeded); the summary of 1 step follows in this log instead"
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn a_summary_gitea_took_leaves_a_note_and_nothing_for_the_log() {
    let (base_url, seen) = stand_in().await;
    let uploaded = target(&base_url, 1)
        .upload(vec![part(0, "only", "## All good")])
        .await;
    assert_eq!(seen.lock().expect("log lock").len(), 1);
    assert!(uploaded.left.is_empty());
    assert_eq!(
        uploaded.row.as_deref(),
        Some("The job summary (written by 1 step) was uploaded to Gitea; the run's page shows it")
    );
    let nothing = target(&base_url, 1).upload(Vec::new()).await;
    assert!(nothing.left.is_empty() && nothing.row.is_none());
}

#[tokio::test]
async fn an_unreachable_gitea_leaves_every_summary_for_the_log_with_one_warning() {
    // A port that was free a moment ago: nothing answers there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let base_url = format!("http://{}", listener.local_addr().expect("local address"));
    drop(listener);
    let parts = vec![part(0, "a", "A"), part(1, "b", "B")];
    let uploaded = target(&base_url, 2).upload(parts.clone()).await;
    assert_eq!(uploaded.left, parts);
    let row = uploaded.row.unwrap_or_default();
    assert!(
        row.starts_with(&format!(
            "Warning: uploading the job summary failed: PUT {base_url}/api/actions_pipeline/_apis/pipelines/workflows/35/jobs/55/steps/0/summary got no answer: "
        )) && row.ends_with("the summary of 2 steps follows in this log instead"),
        "{row}"
    );
}

#[test]
fn a_server_without_the_capability_gets_no_uploads() {
    assert!(SummaryUploads::for_server(&[], "http://gitea", false).is_none());
    let other = ["cancelling".to_owned()];
    assert!(SummaryUploads::for_server(&other, "http://gitea", false).is_none());
    let named = ["job-summary".to_owned()];
    assert!(SummaryUploads::for_server(&named, "http://gitea/", false).is_some());
}
