//! The built binary against a fake broker and a fake GitHub Actions token endpoint on
//! 127.0.0.1 (std::net only): stdin, stdout, exit codes, and nothing written under HOME.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-rise");
const CALLER: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYWxsZXIifQ.Y2FsbGVyLXRva2VuLXNpZw";
const GITHUB_JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJnaXRodWIifQ.Z2l0aHViLWp3dC1zaWc";
const RUNTIME: &str = "runtime-request-token-4f1d";
const PASSWORD: &str = "eyJhbGciOiJFUzI1NiJ9.eyJsb2dpbiI6MX0.cGFzc3dvcmQtc2lnbmF0dXJl";
const NOT_FOUND: &str = "credentials not found in native keychain\n";

struct Request {
    target: String,
    authorization: String,
}

/// An HTTP/1.1 server on 127.0.0.1 answering every request with `respond`'s (status, body).
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

fn serve(respond: impl Fn(&Request) -> (u16, String) + Send + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(clone) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(clone);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut authorization = String::new();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 {
                    break;
                }
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("authorization") {
                        authorization = value.trim().to_string();
                    }
                }
            }
            let request = Request {
                target,
                authorization,
            };
            let (status, body) = respond(&request);
            seen.lock().unwrap().push(request);
            // The helper may hang up after a too-large answer: ignore write errors.
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Server { url, requests }
}

fn login_answer(registry: &str) -> String {
    format!(
        r#"{{"auth_method":"login_credentials","credentials":{{"registry_url":"{registry}","username":"rise-my-app","password":"{PASSWORD}","expires_in":3599}},"image":"{registry}/rise-apps/my-app","repository":"rise-apps/my-app"}}"#
    )
}

/// A broker that wants `Bearer <token>` and answers for registry 127.0.0.1:5000.
fn broker(token: &'static str) -> Server {
    serve(move |req| {
        if req.authorization != format!("Bearer {token}") {
            return (
                401,
                r#"{"error":"token expired","code":"token_expired"}"#.to_string(),
            );
        }
        match req.target.as_str() {
            "/registry/credentials?project=my-app&access=push"
            | "/registry/credentials?project=my-app&access=pull" => {
                (200, login_answer("127.0.0.1:5000"))
            }
            _ => (
                403,
                r#"{"error":"not allowed to use this project","code":"forbidden"}"#.to_string(),
            ),
        }
    })
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn temp_home(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "docker-credential-rise-it-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the helper with only PATH, HOME and `env` in its environment.
fn helper(args: &[&str], stdin: &str, env: &[(&str, &str)], home: &Path) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Dropped at the end of the statement: the helper sees end of input.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in [CALLER, GITHUB_JWT, RUNTIME] {
        assert!(
            !run.stderr.contains(secret),
            "a token on stderr: {}",
            run.stderr
        );
        assert!(
            !run.stdout.contains(secret),
            "a token on stdout: {}",
            run.stdout
        );
    }
    run
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn get_prints_the_brokers_credentials_and_writes_nothing() {
    let server = broker(CALLER);
    let home = temp_home("get");
    let env = [
        ("RISE_BROKER_URL", server.url.as_str()),
        ("RISE_PROJECT", "my-app"),
        ("RISE_TOKEN", CALLER),
    ];
    let run = helper(&["get"], "https://127.0.0.1:5000/\n", &env, &home);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    let answer: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(answer["ServerURL"], "https://127.0.0.1:5000/");
    assert_eq!(answer["Username"], "rise-my-app");
    assert_eq!(answer["Secret"], PASSWORD);
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].target,
        "/registry/credentials?project=my-app&access=push"
    );
    assert_eq!(files_under(&home), Vec::<PathBuf>::new());
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn another_registry_host_is_not_found() {
    let server = broker(CALLER);
    let home = temp_home("not-found");
    let env = [
        ("RISE_BROKER_URL", server.url.as_str()),
        ("RISE_PROJECT", "my-app"),
        ("RISE_TOKEN", CALLER),
    ];
    for host in [
        "registry.example.com",
        "https://index.docker.io/v1/",
        "127.0.0.1:5001",
    ] {
        let run = helper(&["get"], host, &env, &home);
        assert_eq!((run.code, run.stdout.as_str()), (1, NOT_FOUND), "{host}");
    }
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn a_refusal_exits_1_with_the_code_and_error() {
    let server = broker("some-other-token");
    let home = temp_home("refused");
    let env = [
        ("RISE_BROKER_URL", server.url.as_str()),
        ("RISE_PROJECT", "my-app"),
        ("RISE_TOKEN", CALLER),
    ];
    let run = helper(&["get"], "127.0.0.1:5000", &env, &home);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        "rise broker refused: token_expired: token expired\n"
    );
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn pull_access_is_asked_for() {
    let server = broker(CALLER);
    let home = temp_home("pull");
    let env = [
        ("RISE_BROKER_URL", server.url.as_str()),
        ("RISE_PROJECT", "my-app"),
        ("RISE_ACCESS", "pull"),
        ("RISE_TOKEN", CALLER),
    ];
    let run = helper(&["get"], "127.0.0.1:5000", &env, &home);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        server.requests.lock().unwrap()[0].target,
        "/registry/credentials?project=my-app&access=pull"
    );
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn token_file_and_token_command_are_trimmed() {
    let server = broker(CALLER);
    let home = temp_home("file-command");
    let file = home.join("token");
    std::fs::write(&file, format!("\n {CALLER} \n")).unwrap();
    let file = file.to_str().unwrap().to_string();
    let command = format!("printf '  %s\\n' '{CALLER}'");
    for source in [
        ("RISE_TOKEN_FILE", file.as_str()),
        ("RISE_TOKEN_COMMAND", command.as_str()),
    ] {
        let env = [
            ("RISE_BROKER_URL", server.url.as_str()),
            ("RISE_PROJECT", "my-app"),
            source,
        ];
        let run = helper(&["get"], "127.0.0.1:5000", &env, &home);
        assert_eq!(run.code, 0, "{}: {}", source.0, run.stdout);
    }
    let env = [
        ("RISE_BROKER_URL", server.url.as_str()),
        ("RISE_PROJECT", "my-app"),
        ("RISE_TOKEN_COMMAND", "exit 7"),
    ];
    let run = helper(&["get"], "127.0.0.1:5000", &env, &home);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        "docker-credential-rise: RISE_TOKEN_COMMAND failed (exit status: 7)\n"
    );
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn github_actions_oidc_token_is_fetched_for_the_audience() {
    let broker_server = broker(GITHUB_JWT);
    let github = serve(|req| {
        let ok = req.authorization == format!("Bearer {RUNTIME}")
            && req.target == "/token?api-version=2.0&audience=rise-ci";
        if ok {
            (200, format!(r#"{{"count":1,"value":"{GITHUB_JWT}"}}"#))
        } else {
            (401, r#"{"message":"bad request token"}"#.to_string())
        }
    });
    let home = temp_home("github");
    let request_url = format!("{}/token?api-version=2.0", github.url);
    let env = [
        ("RISE_BROKER_URL", broker_server.url.as_str()),
        ("RISE_PROJECT", "my-app"),
        ("RISE_AUDIENCE", "rise-ci"),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", request_url.as_str()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", RUNTIME),
    ];
    let run = helper(&["get"], "127.0.0.1:5000", &env, &home);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(github.requests.lock().unwrap().len(), 1);
    // The wrong audience: GitHub's endpoint refuses and the helper says so.
    let env = [env[0], env[1], ("RISE_AUDIENCE", "other"), env[3], env[4]];
    let run = helper(&["get"], "127.0.0.1:5000", &env, &home);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("OIDC token request to 127.0.0.1 failed: HTTP 401"),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn an_oversized_answer_is_refused() {
    let server = serve(|_| (200, format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000))));
    let home = temp_home("oversized");
    let env = [
        ("RISE_BROKER_URL", server.url.as_str()),
        ("RISE_PROJECT", "my-app"),
        ("RISE_TOKEN", CALLER),
    ];
    let run = helper(&["get"], "127.0.0.1:5000", &env, &home);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("answered more than 65536 bytes"),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn an_unreachable_broker_and_bad_settings_are_explained() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let closed = format!("http://127.0.0.1:{port}");
    let home = temp_home("unreachable");
    let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
        (
            vec![
                ("RISE_BROKER_URL", closed.as_str()),
                ("RISE_PROJECT", "my-app"),
                ("RISE_TOKEN", CALLER),
            ],
            format!("cannot reach the rise broker at {closed}: "),
        ),
        (
            vec![
                ("RISE_BROKER_URL", "http://broker.example"),
                ("RISE_PROJECT", "my-app"),
                ("RISE_TOKEN", CALLER),
            ],
            "not a loopback host".to_string(),
        ),
        (
            vec![("RISE_PROJECT", "my-app"), ("RISE_TOKEN", CALLER)],
            "RISE_BROKER_URL is not set".to_string(),
        ),
        (
            vec![
                ("RISE_BROKER_URL", "https://broker.example"),
                ("RISE_PROJECT", "my-app"),
            ],
            "no caller token".to_string(),
        ),
    ];
    for (env, expected) in cases {
        let run = helper(&["get"], "127.0.0.1:5000", &env, &home);
        assert_eq!(run.code, 1);
        assert!(
            run.stdout.starts_with("docker-credential-rise: "),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains(&expected), "{}", run.stdout);
    }
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn store_erase_list_version_store_nothing() {
    let home = temp_home("store");
    let creds = format!(r#"{{"ServerURL":"127.0.0.1:5000","Username":"u","Secret":"{PASSWORD}"}}"#);
    let run = helper(&["store"], &creds, &[], &home);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    let run = helper(&["erase"], "127.0.0.1:5000\n", &[], &home);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    let run = helper(&["list"], "", &[], &home);
    assert_eq!((run.code, run.stdout.as_str()), (0, "{}\n"));
    let run = helper(&["version"], "", &[], &home);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.starts_with("docker-credential-rise "),
        "{}",
        run.stdout
    );
    assert_eq!(files_under(&home), Vec::<PathBuf>::new());
    let _ = std::fs::remove_dir_all(home);
}
