//! A small Lambda Runtime API emulator for driving the built binary as Lambda does:
//! it hands out events on `next`, collects the answers, and times each invocation.

use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What the function posted back for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Response(Value),
    Error(Value),
}

/// One answered invocation.
#[derive(Debug)]
pub struct Answered {
    pub request_id: String,
    pub answer: Answer,
    /// From handing out the event to receiving the answer.
    pub took: Duration,
    /// When the event was handed out and when the answer came.
    pub handed_out: Instant,
    pub answered: Instant,
}

type Queue = Arc<(Mutex<VecDeque<(usize, Value)>>, Condvar)>;

/// Serves queued events one by one on `next`; a `next` with nothing queued waits.
pub struct RuntimeApi {
    pub addr: String,
    answers: mpsc::Receiver<Answered>,
    queue: Queue,
    pushed: Mutex<usize>,
    /// `next` requests waiting for an event: a function ready for one.
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl RuntimeApi {
    pub fn start(events: Vec<Value>) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let count = events.len();
        let queue: Queue = Arc::new((
            Mutex::new(events.into_iter().enumerate().collect()),
            Condvar::new(),
        ));
        let (tx, rx) = mpsc::channel();
        let served = queue.clone();
        let handed_out = Arc::new(Mutex::new(std::collections::HashMap::new()));
        let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let waiters = waiting.clone();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let queue = served.clone();
                let tx = tx.clone();
                let handed_out = handed_out.clone();
                let waiters = waiters.clone();
                thread::spawn(move || serve(conn, &queue, &tx, &handed_out, &waiters));
            }
        });
        RuntimeApi {
            addr,
            answers: rx,
            queue,
            pushed: Mutex::new(count),
            waiting,
        }
    }

    /// Functions waiting for an event (their `next` request is open).
    pub fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Queues another event; returns its request id.
    pub fn push(&self, event: Value) -> String {
        let mut pushed = self.pushed.lock().expect("pushed");
        let id = *pushed;
        *pushed += 1;
        let (q, ready) = &*self.queue;
        q.lock().expect("queue").push_back((id, event));
        ready.notify_all();
        format!("req-{id}")
    }

    /// The next answer, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Result<Answered, mpsc::RecvTimeoutError> {
        self.answers.recv_timeout(timeout)
    }
}

fn serve(
    conn: TcpStream,
    queue: &Queue,
    tx: &mpsc::Sender<Answered>,
    handed_out: &Mutex<std::collections::HashMap<String, Instant>>,
    waiting: &std::sync::atomic::AtomicUsize,
) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        if path.ends_with("/invocation/next") {
            let (i, event) = {
                let (q, ready) = &**queue;
                let mut q = q.lock().expect("queue");
                waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let next = loop {
                    if let Some(next) = q.pop_front() {
                        break next;
                    }
                    q = ready.wait(q).expect("queue");
                };
                waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                next
            };
            let payload = event.to_string();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                + 120_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: req-{i}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:111122223333:function:bedrock-denied-models\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\r\n",
                payload.len()
            );
            handed_out
                .lock()
                .expect("handed out")
                .insert(format!("req-{i}"), Instant::now());
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(payload.as_bytes());
        } else {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let request_id = path.split('/').nth(4).unwrap_or_default().to_string();
            let answered = Instant::now();
            let handed = handed_out
                .lock()
                .expect("handed out")
                .remove(&request_id)
                .unwrap_or(answered);
            let answer = if path.ends_with("/response") {
                Answer::Response(value)
            } else {
                Answer::Error(value)
            };
            let _ = tx.send(Answered {
                request_id,
                answer,
                took: answered - handed,
                handed_out: handed,
                answered,
            });
            let _ = conn.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}");
        }
    }
}

/// The function as Lambda starts it: the binary with the runtime's environment.
pub fn function_command(bin: &Path, api: &RuntimeApi, env: &[(&str, &str)]) -> Command {
    function_command_at(bin, &api.addr, env)
}

/// [`function_command`] for a runtime API at `addr`.
pub fn function_command_at(bin: &Path, addr: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("AWS_LAMBDA_RUNTIME_API", addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bedrock-denied-models")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Nothing from the caller's shell may change what the function is configured with.
    for v in crate::lambda::VARIABLES
        .iter()
        .chain(&crate::config::VARIABLES)
    {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The running function; everything it writes (logs and metrics on stdout, anything
/// on stderr) is collected as it comes.
pub struct Function {
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Function {
    pub fn spawn(mut cmd: Command) -> Function {
        let mut child = cmd.spawn().expect("start the function");
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for stream in streams.into_iter().flatten() {
            let output = output.clone();
            readers.push(thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut o = output.lock().expect("output");
                    o.push_str(&line);
                    o.push('\n');
                }
            }));
        }
        Function {
            child,
            output,
            readers,
        }
    }

    /// Peak resident memory of the running function, in KiB (Linux).
    pub fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|n| n.parse().ok())
            })
            .expect("VmHWM of the function")
    }

    /// Stops the function and returns everything it wrote, to the end of both streams.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = self.output.lock().expect("output").clone();
        out
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
