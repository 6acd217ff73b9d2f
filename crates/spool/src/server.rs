//! One server connection: dialing, logging in, and the few conversations the
//! pool itself has with a server (reset, health probe, parameter sync).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fed::messages::{backend, frontend, startup};
use fed::middleware::eqp::ServerStatements;
use fed::middleware::ps::ServerSettings;
use fed::{Conn, Pipeline, Stream, TxStatus};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

use crate::error::{Error, Result, ServerError};
use crate::recipe::{Address, Recipe, ServerTls, TlsWhen};
use crate::status::ServerStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The (process id, secret key) pair a server gave us in BackendKeyData:
/// what a CancelRequest for it must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackendKey {
    /// Backend process id.
    pub pid: i32,
    /// Secret key.
    pub secret: i32,
}

pub use fed::middleware::ps::Params;

/// A server's parts, borrowed together (see [`Server::parts`]).
pub struct Parts<'a> {
    /// The connection.
    pub conn: &'a mut Conn,
    /// What it owes.
    pub pipeline: &'a mut Pipeline,
    /// What it reported.
    pub params: &'a mut Params,
    /// Its prepared statements.
    pub statements: &'a mut ServerStatements,
    /// The settings clients left on it.
    pub settings: &'a mut ServerSettings,
}

/// A logged-in server connection.
#[derive(Debug)]
pub struct Server {
    id: u64,
    conn: Conn,
    pipeline: Pipeline,
    key: BackendKey,
    params: Params,
    statements: ServerStatements,
    settings: ServerSettings,
    address: Address,
    created: Instant,
    idle_since: Instant,
    served: bool,
    broken: bool,
    status: Arc<ServerStatus>,
    /// The pool's reconnect epoch when its dial began: a server older than
    /// the pool's current epoch closes when it comes back (RECONNECT).
    pub(crate) epoch: u64,
}

impl rob::Keyed for Server {
    fn key(&self) -> u64 {
        self.id
    }
}

impl Server {
    /// Dials the recipe's address and logs in, each step under its deadline,
    /// with TLS as the recipe's sslmode says.
    pub async fn connect(recipe: &Recipe) -> Result<Server> {
        let mut server = Server::log_in(recipe).await?;
        if let Some(sql) = &recipe.connect_query {
            if let Err(e) = server.query(sql).await {
                tracing::warn!(server = %recipe.address, error = %e, "connect_query failed; the server is used anyway");
            }
            if !server.pipeline.is_idle() {
                // Left a transaction open, or the stream out of step.
                server.reset(None, recipe.login_timeout).await?;
            }
        }
        Ok(server)
    }

    async fn log_in(recipe: &Recipe) -> Result<Server> {
        let tls = recipe
            .tls
            .as_ref()
            .filter(|_| matches!(recipe.address, Address::Tcp { .. }));
        match tls {
            // sslmode=allow: TLS only when the plain login is refused.
            Some(t) if t.when == TlsWhen::IfRequired => {
                match Server::connect_with(recipe, None).await {
                    Err(Error::LoginRefused { .. }) => Server::connect_with(recipe, Some(t)).await,
                    other => other,
                }
            }
            tls => Server::connect_with(recipe, tls).await,
        }
    }

    async fn connect_with(recipe: &Recipe, tls: Option<&ServerTls>) -> Result<Server> {
        let addr = recipe.address.to_string();
        let stream = tokio::time::timeout(recipe.connect_timeout, dial(&recipe.address))
            .await
            .map_err(|_| Error::Timeout {
                addr: addr.clone(),
                what: "connect",
                after: recipe.connect_timeout,
            })?
            .map_err(|e| Error::Connect {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        let handshake = async {
            let stream = match tls {
                Some(tls) => start_tls(stream, tls, &addr).await?,
                None => stream,
            };
            let mut conn = Conn::new(stream);
            let (key, params) = login(&mut conn, recipe).await?;
            Ok::<_, Error>((conn, key, params))
        };
        let (conn, key, params) = tokio::time::timeout(recipe.login_timeout, handshake)
            .await
            .map_err(|_| Error::Timeout {
                addr,
                what: "login",
                after: recipe.login_timeout,
            })??;
        let now = Instant::now();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let status = Arc::new(ServerStatus::new(
            id,
            key.pid,
            conn.stream().local_address(),
            conn.stream().is_tls(),
        ));
        Ok(Server {
            status,
            epoch: 0,
            id,
            conn,
            pipeline: Pipeline::new(),
            key,
            params,
            statements: ServerStatements::with_capacity(recipe.max_prepared_statements),
            settings: ServerSettings::default(),
            address: recipe.address.clone(),
            created: now,
            idle_since: now,
            served: false,
            broken: false,
        })
    }

    /// Unique id, for logs and affinity.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The connection, for the relay.
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Everything the relay and its middlewares work on, borrowed at once.
    pub fn parts(&mut self) -> Parts<'_> {
        Parts {
            conn: &mut self.conn,
            pipeline: &mut self.pipeline,
            params: &mut self.params,
            statements: &mut self.statements,
            settings: &mut self.settings,
        }
    }

    /// The settings clients left on the server, for ps.
    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    /// What the server still owes.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The key a CancelRequest for this server must carry.
    pub fn backend_key(&self) -> BackendKey {
        self.key
    }

    /// Where the server is, for cancel requests.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Parameters the server reported.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// What the admin console shows of it.
    pub fn status(&self) -> &Arc<ServerStatus> {
        &self.status
    }

    /// Time since login.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }

    /// Time since it last went idle.
    pub fn idle_for(&self) -> Duration {
        self.idle_since.elapsed()
    }

    pub(crate) fn mark_idle(&mut self) {
        self.idle_since = Instant::now();
        self.served = true;
        self.status.set_prepared(self.statements.len());
    }

    /// Whether the server went back to its pool at least once (a fresh one
    /// has just proved itself by logging in).
    pub fn has_served(&self) -> bool {
        self.served
    }

    /// Marks the server unusable: the pool closes it on check-in.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Whether it was marked unusable or its protocol state is unknown.
    pub fn is_broken(&self) -> bool {
        self.broken || self.pipeline.is_desynced()
    }

    /// A non-blocking check that an idle server is still there: it must have
    /// sent nothing. (A server that sends while idle is shutting down, or
    /// holds a notification for a client who left: either way, not reusable.)
    pub fn probe(&mut self) -> bool {
        if !self.conn.buffered().is_empty() {
            return false;
        }
        let mut byte = [0u8; 1];
        matches!(self.conn.stream_mut().try_read_now(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Brings the server back to idle after its client left, and runs
    /// `reset_query` if given: ends a COPY the client abandoned, syncs an open
    /// extended-protocol batch, reads everything still owed, rolls back an
    /// open transaction. All within `timeout`.
    pub async fn reset(&mut self, reset_query: Option<&str>, timeout: Duration) -> Result<()> {
        let addr = self.address.to_string();
        match tokio::time::timeout(timeout, self.reset_inner(reset_query)).await {
            Ok(r) => r,
            Err(_) => {
                self.broken = true;
                Err(Error::Timeout {
                    addr,
                    what: "reset",
                    after: timeout,
                })
            }
        }
    }

    async fn reset_inner(&mut self, reset_query: Option<&str>) -> Result<()> {
        self.pipeline.clear_synthetic();
        self.drain().await?;
        if self.pipeline.status() != TxStatus::Idle {
            self.query("ROLLBACK").await?;
        }
        if let Some(q) = reset_query {
            self.query(q).await?;
        }
        if !self.pipeline.is_idle() {
            self.broken = true;
            return Err(self.protocol_error(fed::Error::Unexpected {
                tag: self.pipeline.status().as_byte() as char,
                context: "status after reset",
            }));
        }
        Ok(())
    }

    /// Encodes a message towards the server, tracked by the pipeline.
    fn send(&mut self, encode: impl FnOnce(&mut bytes::BytesMut)) {
        let out = self.conn.out();
        let start = out.len();
        encode(out);
        self.pipeline
            .record_sent(&out[start..], fed::pipeline::Swallow::Nothing);
    }

    /// Reads until nothing is owed, noting parameter changes; returns the
    /// first error the server reported, if any. Whatever a departed client
    /// left open is closed on the way: a COPY FROM STDIN (even one the server
    /// starts only now, for a query the client sent just before it left) is
    /// failed, and an open extended-protocol batch is synced.
    async fn drain(&mut self) -> Result<Option<ServerError>> {
        self.drain_keeping(None).await
    }

    /// [`Server::drain`], keeping the first column of the first row in
    /// `value` when asked.
    async fn drain_keeping(
        &mut self,
        mut value: Option<&mut Option<Vec<Option<String>>>>,
    ) -> Result<Option<ServerError>> {
        let mut first_error = None;
        loop {
            if self.pipeline.awaits_copy_data() {
                self.send(|b| {
                    frontend::CopyFail {
                        message: b"client disconnected",
                    }
                    .encode(b)
                });
            }
            if self.pipeline.needs_sync() {
                self.send(|b| frontend::Sync {}.encode(b));
            }
            self.conn
                .flush()
                .await
                .map_err(|e| self.protocol_error(e))?;
            if !self.pipeline.owes() {
                break;
            }
            let msg = match self.conn.read().await {
                Ok(m) => m,
                Err(e) => {
                    self.broken = true;
                    return Err(self.protocol_error(e));
                }
            };
            // The batch an error fails, before the pipeline moves past it.
            let batch = self.pipeline.batch_answering();
            self.pipeline
                .server_sent(msg.tag, msg.body.first().copied());
            match msg.tag {
                b'S' => self.params.apply(&msg.body),
                b'C' => match &msg.body[..] {
                    b"DISCARD ALL\0" => {
                        self.statements.clear();
                        self.settings.clear();
                    }
                    b"DEALLOCATE ALL\0" => self.statements.clear(),
                    _ => {}
                },
                // What a departed client left in flight is answered here,
                // without eqp: keep its bookkeeping of this server true.
                b'Z' => self
                    .statements
                    .batches_done(self.pipeline.batch_answering()),
                b'E' => {
                    self.statements.batch_failed(batch);
                    if first_error.is_none() {
                        first_error = Some(server_error(&msg.body));
                    }
                }
                b'D' => {
                    if let Some(v) = value.take() {
                        *v = row(&msg.body);
                    }
                }
                _ => {}
            }
            if self.pipeline.is_desynced() {
                self.broken = true;
                return Err(self.protocol_error(fed::Error::Unexpected {
                    tag: msg.tag as char,
                    context: "while draining a server",
                }));
            }
        }
        Ok(first_error)
    }

    /// Runs one simple query to completion and returns the first column of
    /// its first row (`None` for no row or NULL). For monitoring queries.
    pub async fn query_value(&mut self, sql: &str) -> Result<Option<String>> {
        let mut value = None;
        self.statements.forget_unnamed();
        self.send(|b| {
            frontend::Query {
                query: sql.as_bytes(),
            }
            .encode(b)
        });
        match self.drain_keeping(Some(&mut value)).await? {
            None => Ok(value.and_then(|row| row.into_iter().next().flatten())),
            Some(error) => Err(Error::Query {
                addr: self.address.to_string(),
                query: sql.to_owned(),
                error,
            }),
        }
    }

    /// Runs `sql` with text parameters `params` ($1, $2, ...) through the
    /// extended protocol, so values are never spliced into SQL text, and
    /// returns its first row (`None` for no row). For lookups such as
    /// PgBouncer's auth_query.
    pub async fn query_row(
        &mut self,
        sql: &str,
        params: &[&str],
    ) -> Result<Option<Vec<Option<String>>>> {
        let mut value = None;
        self.statements.forget_unnamed();
        let values: Vec<Option<&[u8]>> = params.iter().map(|p| Some(p.as_bytes())).collect();
        self.send(|b| {
            frontend::Parse {
                statement: b"",
                query: sql.as_bytes(),
                param_types: fed::codec::Array::EMPTY,
            }
            .encode(b);
            frontend::Bind {
                portal: b"",
                statement: b"",
                param_formats: fed::codec::Array::EMPTY,
                params: fed::codec::Array::from_slice(&values),
                result_formats: fed::codec::Array::EMPTY,
            }
            .encode(b);
            frontend::Execute {
                portal: b"",
                max_rows: 0,
            }
            .encode(b);
            frontend::Sync {}.encode(b);
        });
        match self.drain_keeping(Some(&mut value)).await? {
            None => Ok(value),
            Some(error) => Err(Error::Query {
                addr: self.address.to_string(),
                query: sql.to_owned(),
                error,
            }),
        }
    }

    /// Runs one simple query to completion, discarding rows. An error from
    /// the server is returned as [`Error::Query`].
    pub async fn query(&mut self, sql: &str) -> Result<()> {
        self.query_value(sql).await.map(drop)
    }

    fn protocol_error(&self, source: fed::Error) -> Error {
        Error::Protocol {
            addr: self.address.to_string(),
            source,
        }
    }

    /// Says goodbye (Terminate) and closes.
    pub async fn terminate(mut self) {
        frontend::Terminate {}.encode(self.conn.out());
        let _ = tokio::time::timeout(Duration::from_secs(1), self.conn.shutdown()).await;
    }
}

async fn dial(addr: &Address) -> std::io::Result<Stream> {
    match addr {
        Address::Tcp { host, port } => {
            let s = TcpStream::connect((host.as_str(), *port)).await?;
            s.set_nodelay(true)?;
            let ka = socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(60))
                .with_interval(Duration::from_secs(10));
            socket2::SockRef::from(&s).set_tcp_keepalive(&ka)?;
            Ok(Stream::from(s))
        }
        Address::Unix(_) => {
            let path = addr.socket_path().expect("unix address");
            Ok(Stream::from(UnixStream::connect(path).await?))
        }
    }
}

/// Asks the server for TLS (SSLRequest) and, when it agrees, performs the
/// handshake. A server that declines gets a plain connection unless TLS is
/// required.
async fn start_tls(stream: Stream, tls: &ServerTls, addr: &str) -> Result<Stream> {
    let fail = |reason: String| Error::Tls {
        addr: addr.to_owned(),
        reason,
    };
    let Some(mut plain) = stream.into_plain() else {
        return Err(fail("the connection is already encrypted".into()));
    };
    let mut request = bytes::BytesMut::new();
    startup::Startup::SSLRequest(startup::SSLRequest).encode(&mut request);
    plain
        .write_all(&request)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut answer = [0u8; 1];
    plain
        .read_exact(&mut answer)
        .await
        .map_err(|e| fail(format!("no answer to SSLRequest: {e}")))?;
    match answer[0] {
        b'S' => {
            let tls_stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                .connect(tls.server_name.clone(), plain)
                .await
                .map_err(|e| fail(e.to_string()))?;
            Ok(Stream::TlsClient(Box::new(tls_stream)))
        }
        b'N' if tls.when != TlsWhen::Always => Ok(Stream::Plain(plain)),
        b'N' => Err(fail(
            "the server does not support TLS, but sslmode requires it".into(),
        )),
        other => Err(fail(format!(
            "unexpected answer {:?} to SSLRequest",
            other as char
        ))),
    }
}

/// The startup exchange, from StartupMessage to the first ReadyForQuery.
async fn login(conn: &mut Conn, recipe: &Recipe) -> Result<(BackendKey, Params)> {
    let addr = recipe.address.to_string();
    let proto = |source: fed::Error| Error::Protocol {
        addr: addr.clone(),
        source,
    };
    let mut pairs: Vec<(&[u8], &[u8])> = vec![
        (b"user", recipe.user.as_bytes()),
        (b"database", recipe.database.as_bytes()),
    ];
    for (k, v) in &recipe.parameters {
        pairs.push((k.as_bytes(), v.as_bytes()));
    }
    startup::StartupMessage {
        protocol_version: 3 << 16,
        parameters: fed::codec::PairList::from_slice(&pairs),
    }
    .encode(conn.out());
    conn.flush().await.map_err(proto)?;

    let mut auth = auth::ClientAuth::new(&recipe.credentials);
    let mut key = None;
    let mut params = Params::default();
    loop {
        let msg = conn.read().await.map_err(proto)?;
        match msg.tag {
            backend::tag::AUTHENTICATION => {
                let req =
                    backend::Authentication::decode(&msg.body).map_err(|e| proto(e.into()))?;
                let mut mechs: [&[u8]; 4] = [&[]; 4];
                let request = match req {
                    backend::Authentication::Ok => auth::ServerRequest::Ok,
                    backend::Authentication::CleartextPassword => auth::ServerRequest::Cleartext,
                    backend::Authentication::MD5Password { salt } => {
                        auth::ServerRequest::Md5 { salt }
                    }
                    backend::Authentication::SASL { mechanisms } => {
                        let mut n = 0;
                        for m in mechanisms.iter().take(mechs.len()) {
                            mechs[n] = m;
                            n += 1;
                        }
                        auth::ServerRequest::Sasl {
                            mechanisms: &mechs[..n],
                        }
                    }
                    backend::Authentication::SASLContinue { data } => {
                        auth::ServerRequest::SaslContinue(data)
                    }
                    backend::Authentication::SASLFinal { data } => {
                        auth::ServerRequest::SaslFinal(data)
                    }
                    other => auth::ServerRequest::Other(other.code()),
                };
                let response = auth.on_request(request).map_err(|source| Error::Auth {
                    addr: addr.clone(),
                    source,
                })?;
                match response {
                    None => {}
                    Some(auth::Response::Password(pw)) => {
                        frontend::PasswordMessage { password: &pw }.encode(conn.out());
                    }
                    Some(auth::Response::SaslInitial { mechanism, data }) => {
                        frontend::SASLInitialResponse {
                            mechanism: mechanism.as_bytes(),
                            data: Some(&data),
                        }
                        .encode(conn.out());
                    }
                    Some(auth::Response::SaslResponse(data)) => {
                        frontend::SASLResponse { data: &data }.encode(conn.out());
                    }
                }
                conn.flush().await.map_err(proto)?;
            }
            backend::tag::ERROR_RESPONSE => {
                return Err(Error::LoginRefused {
                    addr: addr.clone(),
                    error: server_error(&msg.body),
                });
            }
            backend::tag::PARAMETER_STATUS => params.apply(&msg.body),
            backend::tag::BACKEND_KEY_DATA => {
                let k = backend::BackendKeyData::decode(&msg.body).map_err(|e| proto(e.into()))?;
                key = Some(BackendKey {
                    pid: k.process_id,
                    secret: k.secret_key,
                });
            }
            backend::tag::READY_FOR_QUERY => {
                return Ok((key.unwrap_or(BackendKey { pid: 0, secret: 0 }), params));
            }
            backend::tag::NOTICE_RESPONSE | backend::tag::NEGOTIATE_PROTOCOL_VERSION => {}
            other => {
                return Err(proto(fed::Error::Unexpected {
                    tag: other as char,
                    context: "during server login",
                }));
            }
        }
    }
}

/// The columns of a DataRow body, as text (each `None` when NULL);
/// `None` when the body is malformed.
fn row(body: &[u8]) -> Option<Vec<Option<String>>> {
    let row = fed::messages::backend::DataRow::decode(body).ok()?;
    Some(
        row.values
            .iter()
            .map(|v| v.map(|v| String::from_utf8_lossy(v).into_owned()))
            .collect(),
    )
}

/// The fields of an ErrorResponse body, for errors we pass on.
pub fn server_error(body: &[u8]) -> ServerError {
    match backend::ErrorResponse::decode(body) {
        Ok(e) => ServerError {
            severity: String::from_utf8_lossy(e.severity().unwrap_or(b"ERROR")).into_owned(),
            code: e
                .code()
                .map_or_else(|| "XX000".to_owned(), |c| c.as_str().to_owned()),
            message: String::from_utf8_lossy(e.message().unwrap_or(b"")).into_owned(),
        },
        Err(_) => ServerError {
            severity: "ERROR".into(),
            code: "08P01".into(),
            message: "malformed ErrorResponse".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::server_error;

    /// A server's ErrorResponse without a SQLSTATE (CVE-2025-6666's class),
    /// or one that does not decode, still gives the client a code and a
    /// message.
    #[test]
    fn errors_without_a_sqlstate_get_one() {
        let e = server_error(b"SFATAL\0Mboom\0\0");
        assert_eq!((e.severity.as_str(), e.code.as_str()), ("FATAL", "XX000"));
        assert_eq!(e.message, "boom");
        let e = server_error(b"\0");
        assert_eq!(e.code.len(), 5);
        let e = server_error(b"Sno terminator");
        assert_eq!(e.code, "08P01");
    }
}
