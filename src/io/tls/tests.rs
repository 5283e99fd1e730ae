//! End-to-end mutual TLS over real sockets: a DEU node serving `grpc.health.v1.Health`
//! through [`incoming`], dialled by good and hostile clients through [`channel`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tonic::transport::{Channel, Server};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::*;
use crate::tools::certs::{generate, generate_foreign_ca, revoke, CertsOptions};

fn country(code: &str) -> Country {
    Country::parse(code).unwrap()
}

/// A consortium of DEU, FRA and ITA in a temporary directory.
fn consortium() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    generate(&CertsOptions {
        out: dir.path().to_path_buf(),
        countries: vec![country("DEU"), country("FRA"), country("ITA")],
        days: 30,
        force: false,
    })
    .unwrap();
    dir
}

fn files(dir: &Path, code: &str, crls: Vec<PathBuf>) -> TlsFiles {
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("{code}.pem")),
        key: dir.join(format!("{code}.key")),
        crls,
    }
}

/// A running health server that records the member of every caller it let through.
struct TestServer {
    addr: SocketAddr,
    callers: Arc<Mutex<Vec<Country>>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestServer {
    async fn start(config: Arc<ServerConfig>) -> TestServer {
        TestServer::start_reloadable(tokio::sync::watch::channel(config.into()).1).await
    }

    async fn start_reloadable(config: tokio::sync::watch::Receiver<ServerTls>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let callers = Arc::new(Mutex::new(Vec::new()));
        let record = callers.clone();
        let identify = move |request: tonic::Request<()>| {
            let member = peer_member(&request)?;
            record.lock().unwrap().push(member);
            Ok(request)
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            Server::builder()
                .layer(tonic::service::InterceptorLayer::new(identify))
                .add_service(health)
                .serve_with_incoming_shutdown(incoming_reloadable(listener, config), async {
                    let _ = stopped.await;
                }),
        );
        TestServer {
            addr,
            callers,
            stop: Some(stop),
            task,
        }
    }

    fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn callers(&self) -> Vec<Country> {
        self.callers.lock().unwrap().clone()
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops")
            .unwrap();
        assert!(result.is_ok(), "server ended with {result:?}");
    }
}

async fn health_check(channel: Channel) -> Result<ServingStatus, tonic::Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await?;
    Ok(response.into_inner().status())
}

/// A health check from `client` (its files) to `server`, dialling the member `expected`.
async fn check_as(server: &TestServer, client: &TlsFiles, expected: Country) -> Result<ServingStatus, tonic::Status> {
    let config = client_config(client, expected).unwrap();
    let channel = channel(&server.endpoint(), Some("localhost"), config, expected).unwrap();
    health_check(channel).await
}

/// The whole error text: the status and every source under it.
fn error_text(status: &tonic::Status) -> String {
    let mut text = format!("{status}");
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        text.push_str(" / ");
        text.push_str(&error.to_string());
        source = error.source();
    }
    text
}

#[tokio::test]
async fn mutual_tls_admits_members_and_refuses_hostile_peers() {
    let dir = consortium();
    let pki = dir.path();
    let (deu, fra, ita) = (country("DEU"), country("FRA"), country("ITA"));
    // DEU's CRL revokes ITA's certificate.
    let crl = pki.join("revoked.crl.pem");
    revoke(pki, &pki.join("ita.pem"), &crl).unwrap();
    let server = TestServer::start(server_config(&files(pki, "deu", vec![crl])).unwrap()).await;
    let fra_files = files(pki, "fra", vec![]);
    let good = |server: &TestServer| {
        let fra_files = fra_files.clone();
        let endpoint = server.endpoint();
        async move {
            let config = client_config(&fra_files, deu).unwrap();
            health_check(channel(&endpoint, Some("localhost"), config, deu).unwrap()).await
        }
    };

    // 1. FRA, expecting DEU, is served, and the server knows it is FRA.
    assert_eq!(good(&server).await.unwrap(), ServingStatus::Serving);
    assert_eq!(server.callers(), vec![fra]);

    // 2. FRA dialling ITA at DEU's address refuses DEU's certificate itself.
    let wrong = check_as(&server, &fra_files, ita).await.unwrap_err();
    let text = error_text(&wrong);
    assert!(
        text.contains("peer certificate names member DEU, expected ITA"),
        "{text}"
    );
    assert_eq!(good(&server).await.unwrap(), ServingStatus::Serving);

    // 3. A FRA certificate from another CA is refused by the server.
    let foreign = generate_foreign_ca(&pki.join("foreign"), fra).unwrap();
    let foreign_files = TlsFiles {
        ca: pki.join("ca.pem"),
        cert: foreign.cert,
        key: foreign.key,
        crls: vec![],
    };
    let foreign = check_as(&server, &foreign_files, deu).await.unwrap_err();
    assert!(error_text(&foreign).contains("UnknownCA"), "{foreign}");
    assert_eq!(good(&server).await.unwrap(), ServingStatus::Serving);

    // 4. ITA's revoked certificate is refused.
    let revoked = check_as(&server, &files(pki, "ita", vec![]), deu).await;
    let text = error_text(&revoked.unwrap_err());
    assert!(text.contains("CertificateRevoked"), "{text}");
    assert_eq!(good(&server).await.unwrap(), ServingStatus::Serving);

    // 5. A client without any certificate is refused.
    let mut roots = RootCertStore::empty();
    roots
        .add(load_certificates(&pki.join("ca.pem")).unwrap().remove(0))
        .unwrap();
    let mut anonymous = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    anonymous.alpn_protocols = vec![b"h2".to_vec()];
    let anonymous = channel(&server.endpoint(), Some("localhost"), Arc::new(anonymous), deu);
    let refused = health_check(anonymous.unwrap()).await.unwrap_err();
    let text = error_text(&refused);
    assert!(text.contains("CertificateRequired"), "{text}");

    // 6. Still serving, and no hostile caller ever reached the service.
    assert_eq!(good(&server).await.unwrap(), ServingStatus::Serving);
    assert_eq!(server.callers(), vec![fra; 5]);
    server.shutdown().await;
}

#[tokio::test]
async fn client_honours_crls_for_servers() {
    let dir = consortium();
    let pki = dir.path();
    let deu = country("DEU");
    let crl = pki.join("deu-revoked.crl.pem");
    revoke(pki, &pki.join("deu.pem"), &crl).unwrap();
    let server = TestServer::start(server_config(&files(pki, "deu", vec![])).unwrap()).await;

    let trusting = check_as(&server, &files(pki, "fra", vec![]), deu).await;
    assert_eq!(trusting.unwrap(), ServingStatus::Serving);
    let careful = check_as(&server, &files(pki, "fra", vec![crl]), deu).await;
    let text = error_text(&careful.unwrap_err());
    assert!(text.to_lowercase().contains("revoked"), "{text}");
    server.shutdown().await;
}

#[test]
fn a_node_whose_own_crl_revokes_its_certificate_says_so_before_connecting() {
    let dir = consortium();
    let pki = dir.path();
    let crl = pki.join("deu-revoked.crl.pem");
    revoke(pki, &pki.join("deu.pem"), &crl).unwrap();
    let deu = files(pki, "deu", vec![crl.clone()]);
    let server = server_config(&deu).unwrap_err();
    let client = client_config(&deu, country("FRA")).unwrap_err();
    for error in [server, client] {
        assert!(
            matches!(&error, TlsError::OwnCertificateRevoked { cert, crl: named, .. }
                if cert.ends_with("deu.pem") && *named == crl),
            "{error}"
        );
    }
    // The same CRL leaves FRA alone.
    assert!(server_config(&files(pki, "fra", vec![crl])).is_ok());

    // A CRL that lists DEU's serial but is signed by another CA (same CA name) does not count.
    let other = consortium();
    let foreign_crl = pki.join("foreign.crl.pem");
    revoke(other.path(), &pki.join("deu.pem"), &foreign_crl).unwrap();
    let error = server_config(&files(pki, "deu", vec![foreign_crl]));
    assert!(error.is_ok(), "{:?}", error.err());
}

/// A reload that revokes a member closes the connection that member holds already (it must not
/// keep pulling over a connection opened before the CRL arrived); other members' connections
/// carry on.
#[tokio::test]
async fn a_reload_closes_established_connections_of_a_revoked_member_only() {
    let dir = consortium();
    let pki = dir.path();
    let deu = country("DEU");
    let (tls, reloads) = tokio::sync::watch::channel(server_tls(&files(pki, "deu", vec![])).unwrap());
    let server = TestServer::start_reloadable(reloads).await;
    let dial = |code: &str| {
        let config = client_config(&files(pki, code, vec![]), deu).unwrap();
        channel(&server.endpoint(), Some("localhost"), config, deu).unwrap()
    };
    let (fra, ita) = (dial("fra"), dial("ita"));
    for channel in [&fra, &ita] {
        assert_eq!(health_check(channel.clone()).await.unwrap(), ServingStatus::Serving);
    }
    // Connections stay up across calls: same channel, nothing new reaches the accept loop.
    assert_eq!(health_check(fra.clone()).await.unwrap(), ServingStatus::Serving);

    let crl = pki.join("fra-revoked.crl.pem");
    revoke(pki, &pki.join("fra.pem"), &crl).unwrap();
    tls.send(server_tls(&files(pki, "deu", vec![crl])).unwrap()).unwrap();

    // FRA's established connection is closed; its channel redials and the handshake is refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        match health_check(fra.clone()).await {
            Err(status) => break status,
            Ok(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Ok(_) => panic!("FRA is still served over its old connection 10 s after the reload"),
        }
    };
    let text = error_text(&refused);
    assert!(!text.is_empty());
    for _ in 0..3 {
        assert!(health_check(fra.clone()).await.is_err(), "FRA is refused from now on");
        assert_eq!(health_check(ita.clone()).await.unwrap(), ServingStatus::Serving);
    }
    let callers = server.callers();
    assert!(callers.contains(&country("ITA")));
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_client_does_not_stall_accepting() {
    let dir = consortium();
    let pki = dir.path();
    let server = TestServer::start(server_config(&files(pki, "deu", vec![])).unwrap()).await;
    // Connects and never sends a byte, holding its handshake open.
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    let served = tokio::time::timeout(
        Duration::from_secs(5),
        check_as(&server, &files(pki, "fra", vec![]), country("DEU")),
    )
    .await
    .expect("a good client is served while another stalls");
    assert_eq!(served.unwrap(), ServingStatus::Serving);
    server.shutdown().await;
}

#[tokio::test]
async fn dropping_incoming_closes_the_listener() {
    let dir = consortium();
    let config = server_config(&files(dir.path(), "deu", vec![])).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(incoming(listener, config));
    let deadline = Instant::now() + Duration::from_secs(5);
    // A connection that reached the backlog before the listener closed is reset; only a
    // refused one proves nothing listens any more.
    loop {
        match TcpStream::connect(addr).await {
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => break,
            _ if Instant::now() < deadline => tokio::task::yield_now().await,
            other => panic!("still listening on {addr} after the stream was dropped: {other:?}"),
        }
    }
}

#[test]
fn member_of_reads_generated_certificates() {
    let dir = consortium();
    for code in ["DEU", "FRA", "ITA"] {
        let cert = load_certificates(&dir.path().join(format!("{}.pem", code.to_lowercase())));
        assert_eq!(member_of(&cert.unwrap()[0]).unwrap(), country(code));
    }
    let ca = load_certificates(&dir.path().join("ca.pem")).unwrap();
    assert!(matches!(member_of(&ca[0]), Err(TlsError::NoMemberSan)));
}

#[test]
fn configurations_refuse_bad_material_naming_the_file() {
    let dir = consortium();
    let pki = dir.path();
    // The CA certificate names no member, so it cannot serve as a node certificate.
    let mut no_member = files(pki, "deu", vec![]);
    no_member.cert = pki.join("ca.pem");
    no_member.key = pki.join("ca.key");
    let error = server_config(&no_member).unwrap_err().to_string();
    assert!(
        error.contains("ca.pem") && error.contains("urn:accord:member:"),
        "{error}"
    );

    let mut missing = files(pki, "deu", vec![]);
    missing.ca = pki.join("absent.pem");
    let error = client_config(&missing, country("FRA")).unwrap_err();
    assert!(matches!(&error, TlsError::Read { path, .. } if path.ends_with("absent.pem")));

    let mut keyless = files(pki, "deu", vec![]);
    keyless.key = pki.join("consortium.toml");
    let error = server_config(&keyless).unwrap_err();
    assert!(matches!(&error, TlsError::NoKey(path) if path.ends_with("consortium.toml")));

    let mut bad_crl = files(pki, "deu", vec![pki.join("deu.pem")]);
    let error = server_config(&bad_crl).unwrap_err();
    assert!(matches!(&error, TlsError::BadCrl { path, .. } if path.ends_with("deu.pem")));

    bad_crl.crls.clear();
    bad_crl.cert = pki.join("fra.pem");
    let error = server_config(&bad_crl).unwrap_err();
    assert!(matches!(error, TlsError::Config(_)), "mismatched key: {error}");
}

#[tokio::test]
async fn channel_refuses_unusable_endpoints() {
    let dir = consortium();
    let fra = country("FRA");
    let config = client_config(&files(dir.path(), "deu", vec![]), fra).unwrap();
    for endpoint in ["http://127.0.0.1:1", "127.0.0.1:1", "https://"] {
        let error = channel(endpoint, None, config.clone(), fra).unwrap_err();
        assert!(matches!(error, TlsError::Endpoint { .. }), "{endpoint}: {error}");
    }
}

/// The PKI in `tests/fixtures/openssl-pki`, made by openssl: ITA's certificates come from an
/// issuing CA under the root, so their files are chains.
fn openssl_pki(cert: &str, key: &str, crls: &[&str]) -> TlsFiles {
    let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openssl-pki");
    TlsFiles {
        ca: pki.join("ca.pem"),
        cert: pki.join(cert),
        key: pki.join(key),
        crls: crls.iter().map(|c| pki.join(c)).collect(),
    }
}

#[test]
fn own_revocation_is_found_under_an_issuing_ca() {
    let crls = ["ca.crl", "sub-ca.crl"];
    let revoked = openssl_pki("ita-revoked.pem", "ita.key", &crls);
    for error in [
        server_config(&revoked).unwrap_err(),
        client_config(&revoked, country("DEU")).unwrap_err(),
    ] {
        assert!(
            matches!(&error, TlsError::OwnCertificateRevoked { crl, .. } if crl.ends_with("sub-ca.crl")),
            "{error}"
        );
    }
    assert!(server_config(&openssl_pki("ita.pem", "ita.key", &crls)).is_ok());
}

#[tokio::test]
async fn chains_through_an_issuing_ca_are_admitted_and_its_crl_honoured() {
    let crls = ["ca.crl", "sub-ca.crl"];
    let deu = country("DEU");
    let server = TestServer::start(server_config(&openssl_pki("deu.pem", "deu.key", &crls)).unwrap()).await;
    let dial = |files: TlsFiles| {
        let endpoint = server.endpoint();
        async move {
            let config = client_config(&files, deu).unwrap();
            health_check(channel(&endpoint, Some("deu.interop.example"), config, deu).unwrap()).await
        }
    };
    assert_eq!(
        dial(openssl_pki("ita.pem", "ita.key", &crls)).await.unwrap(),
        ServingStatus::Serving
    );
    // Without the CRLs of its own, the revoked node dials; DEU's server refuses it.
    assert!(dial(openssl_pki("ita-revoked.pem", "ita.key", &[])).await.is_err());
    assert_eq!(server.callers(), vec![country("ITA")]);
    server.shutdown().await;
}
