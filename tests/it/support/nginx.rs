//! Debian's nginx as a load balancer in front of several gateways: started from a config in a
//! temp dir on a free loopback port, round robin over the upstreams, stopped when dropped.
//! Without nginx the tests that need it are skipped, loudly, except under CI (`CI=true`), where
//! `.ci/run` installs it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Nginx {
    pub port: u16,
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Nginx {
    /// nginx balancing over `upstreams` (ports on 127.0.0.1), or `None` when it is not
    /// installed here (and this is not CI).
    pub async fn start(upstreams: &[u16]) -> Option<Nginx> {
        let Some(bin) = binary() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "nginx is not installed: .ci/run must install the nginx package"
            );
            eprintln!("SKIPPED: load-balancer test (no nginx; `apt-get install nginx` to run it)");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::gateway::free_port();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("server 127.0.0.1:{p} max_fails=0;\n"))
            .collect();
        // Round robin, retrying the next gateway when one is down (as a load balancer in front
        // of a fleet would); keep-alive to the upstreams, TCP_NODELAY both ways.
        let conf = format!(
            r#"
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$upstream_addr $status';
    access_log {dir}/access.log upstream;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    tcp_nodelay on;
    upstream gateways {{
        {servers}
        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout;
        }}
    }}
}}
"#,
            dir = dir.path().display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let n = Nginx {
            port,
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(n);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "nginx did not start: {}",
            std::fs::read_to_string(n.dir.path().join("error.log")).unwrap_or_default()
        );
    }

    /// Which upstream ports nginx sent requests to, one entry per request (from its log).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
