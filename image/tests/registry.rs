//! The registry client against a real registry (distribution 2.8), its token server, skopeo-pushed
//! images and a hostile proxy: what a user pulling an image would notice.

use std::io::Read;
use std::path::{Path, PathBuf};

use flotilla_tests::hostile_proxy::{HostileProxy, Mode};
use flotilla_tests::registry::{Auth, Registry};
use flotilla_tests::test_image::{Format, TestImage};
use image::digest::Digest;
use image::media_types;
use image::reference::Reference;
use image::registry::{Client, RegistryConfig, RegistryError};

/// A client that reads credentials from `auth_file` only (never the machine's own files).
fn client_with(auth_file: &Path, retries: u32) -> Client {
    Client::new(&RegistryConfig {
        auth_file: Some(auth_file.to_owned()),
        retries: Some(retries),
        ..RegistryConfig::default()
    })
    .unwrap()
}

/// An auth file in `dir` with `entries` (host, user, password).
fn auth_file(dir: &Path, entries: &[(&str, &str, &str)]) -> PathBuf {
    let auths: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(host, user, password)| {
            (
                host.to_string(),
                serde_json::json!({"username": user, "password": password}),
            )
        })
        .collect();
    let path = dir.join("auth.json");
    std::fs::write(&path, serde_json::json!({ "auths": auths }).to_string()).unwrap();
    path
}

fn reference(host: &str, name: &str) -> Reference {
    Reference::parse(&format!("{host}/{name}")).unwrap()
}

fn digest(text: &str) -> Digest {
    text.parse().unwrap()
}

fn read_blob(client: &Client, reference: &Reference, digest: &Digest, size: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    client
        .blob(reference, digest, size)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

fn registry_error(error: &std::io::Error) -> &RegistryError {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<RegistryError>())
        .unwrap_or_else(|| panic!("not a registry error: {error}"))
}

#[test]
fn manifests_by_tag_and_digest_in_oci_and_docker_formats() {
    let registry = Registry::start(Auth::None).unwrap();
    let image = TestImage::build().unwrap();
    image.push(&registry, "oci/app:v1", Format::Oci).unwrap();
    let v2s2_digest = image
        .push(&registry, "docker/app:v1", Format::V2s2)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 0);

    let oci = client
        .manifest(&reference(&registry.host(), "oci/app:v1"))
        .unwrap();
    assert_eq!(oci.media_type, media_types::OCI_MANIFEST);
    assert_eq!(oci.digest.to_string(), image.manifest_digest);
    let bytes = std::fs::read(image.blob_path(&image.manifest_digest)).unwrap();
    assert_eq!(oci.bytes, bytes, "the manifest as pushed, byte for byte");
    let by_digest = reference(
        &registry.host(),
        &format!("oci/app@{}", image.manifest_digest),
    );
    assert_eq!(client.manifest(&by_digest).unwrap(), oci);

    let docker = client
        .manifest(&reference(&registry.host(), "docker/app:v1"))
        .unwrap();
    assert_eq!(docker.media_type, media_types::DOCKER_MANIFEST);
    assert!(media_types::is_manifest(&docker.media_type));
    assert_eq!(docker.digest.to_string(), v2s2_digest);
    let by_digest = client
        .manifest_by_digest(
            &reference(&registry.host(), "docker/app"),
            &digest(&v2s2_digest),
        )
        .unwrap();
    assert_eq!(by_digest, docker);
    let parsed: serde_json::Value = serde_json::from_slice(&docker.bytes).unwrap();
    assert_eq!(parsed["config"]["digest"], image.config_digest);
    assert_eq!(parsed["config"]["mediaType"], media_types::DOCKER_CONFIG);

    // A digest that is not the manifest's: the registry has no such manifest.
    let wrong = Digest::sha256_of(b"no such manifest");
    let error = client
        .manifest_by_digest(&reference(&registry.host(), "oci/app"), &wrong)
        .unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error}");
}

#[test]
fn schema1_manifests_are_refused_with_a_clear_message() {
    let registry = Registry::start(Auth::None).unwrap();
    let image = TestImage::build().unwrap();
    image.push(&registry, "old:v1", Format::V2s1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 0);
    let error = client
        .manifest(&reference(&registry.host(), "old:v1"))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "manifest {}/old:v1 is Docker schema 1, which is deprecated and not supported; \
             push the image again with a current docker or skopeo",
            registry.host()
        )
    );
}

#[test]
fn a_multi_platform_index_and_its_platform_manifests() {
    let registry = Registry::start(Auth::None).unwrap();
    let image = TestImage::builder().multi_platform().build().unwrap();
    image.push(&registry, "multi:v1", Format::Oci).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 0);
    let multi = reference(&registry.host(), "multi:v1");
    let index = client.manifest(&multi).unwrap();
    assert!(
        media_types::is_index(&index.media_type),
        "{}",
        index.media_type
    );
    assert_eq!(
        Some(index.digest.to_string()),
        image.index.as_ref().map(|i| i.digest.clone())
    );
    let parsed: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
    let arm = parsed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .unwrap();
    assert_eq!(arm["platform"]["variant"], "v8");
    let arm = client
        .manifest_by_digest(&multi, &digest(arm["digest"].as_str().unwrap()))
        .unwrap();
    assert_eq!(arm.digest.to_string(), image.platforms[1].manifest.digest);
    assert_eq!(arm.media_type, media_types::OCI_MANIFEST);
}

#[test]
fn every_blob_reads_back_with_its_digest_in_parallel() {
    let registry = Registry::start(Auth::None).unwrap();
    let image = TestImage::build().unwrap();
    image.push(&registry, "app:v1", Format::Oci).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 0);
    let app = reference(&registry.host(), "app:v1");
    let mut blobs: Vec<(String, u64)> = image
        .layers
        .iter()
        .map(|layer| (layer.blob.digest.clone(), layer.blob.size))
        .collect();
    blobs.push((image.config_digest.clone(), image.platforms[0].config.size));
    std::thread::scope(|scope| {
        for (expected, size) in &blobs {
            let (client, app) = (&client, &app);
            scope.spawn(move || {
                let bytes = read_blob(client, app, &digest(expected), *size);
                assert_eq!(bytes.len() as u64, *size);
                assert_eq!(Digest::sha256_of(&bytes).to_string(), *expected);
            });
        }
    });
    let missing = Digest::sha256_of(b"missing");
    let error = client.blob(&app, &missing, 7).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "blob {missing} of {}/app not found in registry {} (http://{}/v2/app/blobs/{missing})",
            registry.host(),
            registry.host(),
            registry.host()
        )
    );
}

#[test]
fn a_missing_tag_is_not_found_and_names_the_reference() {
    let registry = Registry::start(Auth::None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 4);
    let started = std::time::Instant::now();
    let error = client
        .manifest(&reference(&registry.host(), "nope:v1"))
        .unwrap_err();
    assert!(started.elapsed().as_millis() < 200, "a 404 is not retried");
    assert!(
        error.to_string().starts_with(&format!(
            "manifest {}/nope:v1 not found in registry {}",
            registry.host(),
            registry.host()
        )),
        "{error}"
    );
}

#[test]
fn basic_auth_with_credentials_without_and_with_a_wrong_password() {
    let registry = Registry::start(Auth::Basic {
        user: "alice".into(),
        password: "wonderland".into(),
    })
    .unwrap();
    let image = TestImage::build().unwrap();
    image
        .push(&registry, "private/app:v1", Format::Oci)
        .unwrap();
    let app = reference(&registry.host(), "private/app:v1");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker-auth.json");
    registry.write_auth_file(&path).unwrap();
    let client = client_with(&path, 0);
    let manifest = client.manifest(&app).unwrap();
    assert_eq!(manifest.digest.to_string(), image.manifest_digest);
    let layer = &image.layers[2].blob;
    let bytes = read_blob(&client, &app, &digest(&layer.digest), layer.size);
    assert_eq!(Digest::sha256_of(&bytes).to_string(), layer.digest);

    assert_refused_without_the_right_credentials(dir.path(), &app, "alice");
}

/// With credentials for another registry only, and with a wrong password for `user`, the
/// client's errors say which of the two it was.
fn assert_refused_without_the_right_credentials(dir: &Path, app: &Reference, user: &str) {
    let host = app.registry().to_owned();
    let elsewhere = auth_file(dir, &[("other.example", "bob", "x")]);
    let error = client_with(&elsewhere, 0).manifest(app).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "registry {host} asks for credentials and none are configured (looked in {})",
            elsewhere.display()
        )
    );
    let wrong = auth_file(dir, &[(&host, user, "wrong-password")]);
    let error = client_with(&wrong, 0).manifest(app).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("registry {host} rejected the credentials for user {user}")
    );
}

#[test]
fn token_auth_fetches_one_token_and_reuses_it() {
    let registry = Registry::start(Auth::Token).unwrap();
    let image = TestImage::build().unwrap();
    image.push(&registry, "team/app:v1", Format::Oci).unwrap();
    let app = reference(&registry.host(), "team/app:v1");
    let tokens = registry.token_server().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    registry.write_auth_file(&path).unwrap();
    let client = client_with(&path, 0);
    let before = tokens.tokens_issued();
    let manifest = client.manifest(&app).unwrap();
    assert_eq!(manifest.digest.to_string(), image.manifest_digest);
    for layer in &image.layers {
        let bytes = read_blob(&client, &app, &digest(&layer.blob.digest), layer.blob.size);
        assert_eq!(Digest::sha256_of(&bytes).to_string(), layer.blob.digest);
    }
    assert_eq!(
        tokens.tokens_issued() - before,
        1,
        "the token is cached per repository"
    );

    assert_refused_without_the_right_credentials(dir.path(), &app, "flotilla");
}

#[test]
fn docker_io_goes_to_the_first_live_mirror() {
    let registry = Registry::start(Auth::None).unwrap();
    let image = TestImage::build().unwrap();
    image
        .push(&registry, "library/busybox:latest", Format::V2s2)
        .unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(&RegistryConfig {
        mirrors: vec![
            format!("http://127.0.0.1:{closed}"),
            format!("http://{}/", registry.host()),
        ],
        auth_file: Some(auth_file(dir.path(), &[])),
        retries: Some(0),
        ..RegistryConfig::default()
    })
    .unwrap();
    let busybox = Reference::parse("busybox").unwrap();
    let manifest = client.manifest(&busybox).unwrap();
    assert_eq!(manifest.media_type, media_types::DOCKER_MANIFEST);
    let layer = &image.layers[0].blob;
    let bytes = read_blob(&client, &busybox, &digest(&layer.digest), layer.size);
    assert_eq!(Digest::sha256_of(&bytes).to_string(), layer.digest);
}

/// A registry behind a proxy in `mode`, with the default image pushed as `app:v1`.
fn behind_proxy(mode: Mode) -> (Registry, TestImage, HostileProxy, Reference) {
    let registry = Registry::start(Auth::None).unwrap();
    let image = TestImage::build().unwrap();
    image.push(&registry, "app:v1", Format::Oci).unwrap();
    let proxy = HostileProxy::start(&registry, mode).unwrap();
    let app = reference(&proxy.host(), "app:v1");
    (registry, image, proxy, app)
}

#[test]
fn a_loopback_registry_is_tried_over_https_once_then_plain_http() {
    let (_registry, image, proxy, app) = behind_proxy(Mode::Passthrough);
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 0);
    assert_eq!(
        client.manifest(&app).unwrap().digest.to_string(),
        image.manifest_digest
    );
    for layer in &image.layers {
        read_blob(&client, &app, &digest(&layer.blob.digest), layer.blob.size);
    }
    assert_eq!(proxy.requests().len(), 4);
    assert_eq!(proxy.tls_handshakes_refused(), 1);
}

#[test]
fn a_blob_truncated_once_resumes_with_range() {
    let (_registry, image, proxy, app) = behind_proxy(Mode::TruncateBlob {
        after: 100_000,
        every_time: false,
    });
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 2);
    let layer = &image.layers[0].blob;
    let bytes = read_blob(&client, &app, &digest(&layer.digest), layer.size);
    assert_eq!(Digest::sha256_of(&bytes).to_string(), layer.digest);
    let ranges: Vec<Option<String>> = proxy
        .requests()
        .into_iter()
        .filter(|request| request.target.contains("/blobs/"))
        .map(|request| request.range)
        .collect();
    assert_eq!(ranges, [None, Some("bytes=100000-".to_owned())]);
}

#[test]
fn a_blob_truncated_every_time_fails_naming_digest_and_counts() {
    let (_registry, image, _proxy, app) = behind_proxy(Mode::TruncateBlob {
        after: 1000,
        every_time: true,
    });
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 1);
    let layer = &image.layers[0].blob;
    let mut reader = client
        .blob(&app, &digest(&layer.digest), layer.size)
        .unwrap();
    let mut bytes = Vec::new();
    let error = reader.read_to_end(&mut bytes).unwrap_err();
    assert!(
        matches!(
            registry_error(&error),
            RegistryError::Truncated {
                received: 2000,
                attempts: 2,
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    let expected = format!(
        "blob {} of {}/app truncated: got 2000 of {} bytes after 2 attempts",
        layer.digest,
        app.registry(),
        layer.size
    );
    assert!(message.starts_with(&expected), "{message}");
    assert_eq!(bytes.len(), 2000);
}

#[test]
fn close_delimited_blobs_resume_and_stop_at_their_size() {
    let (_registry, image, proxy, app) = behind_proxy(Mode::Undelimited {
        truncate_first_after: Some(5000),
    });
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 1);
    let layer = &image.layers[0].blob;
    let bytes = read_blob(&client, &app, &digest(&layer.digest), layer.size);
    assert_eq!(Digest::sha256_of(&bytes).to_string(), layer.digest);
    let ranges: Vec<Option<String>> = proxy
        .requests()
        .into_iter()
        .filter_map(|request| request.target.contains("/blobs/").then_some(request.range))
        .collect();
    assert_eq!(ranges, [None, Some("bytes=5000-".to_owned())]);

    // Without a length to refuse up front, the byte count stops a body longer than its descriptor.
    let mut reader = client
        .blob(&app, &digest(&layer.digest), layer.size - 1)
        .unwrap();
    let mut bytes = Vec::new();
    let error = reader.read_to_end(&mut bytes).unwrap_err();
    assert!(
        matches!(registry_error(&error), RegistryError::BlobTooLong { .. }),
        "{error}"
    );
    assert!((bytes.len() as u64) < layer.size);
}

#[test]
fn manifest_bombs_are_refused_without_reading_them() {
    for chunked in [false, true] {
        let (_registry, _image, proxy, app) = behind_proxy(Mode::ManifestBomb { chunked });
        let dir = tempfile::tempdir().unwrap();
        let client = client_with(&auth_file(dir.path(), &[]), 0);
        let error = client.manifest(&app).unwrap_err();
        let announced = if chunked {
            ""
        } else {
            " (announced 67108864 bytes)"
        };
        assert_eq!(
            error.to_string(),
            format!(
                "manifest {}/app:v1 from http://{}/v2/app/manifests/v1 is larger than the 4194304 bytes allowed{announced}",
                app.registry(),
                app.registry()
            ),
            "chunked: {chunked}"
        );
        // Give the proxy a moment to notice the closed connection, then check it stopped early.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            proxy.body_bytes_sent() < 16 << 20,
            "the client read {} bytes of the bomb (chunked: {chunked})",
            proxy.body_bytes_sent()
        );
    }
}

#[test]
fn service_unavailable_is_retried() {
    let (_registry, image, proxy, app) = behind_proxy(Mode::Flaky { fail_first_n: 3 });
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 4);
    let manifest = client.manifest(&app).unwrap();
    assert_eq!(manifest.digest.to_string(), image.manifest_digest);
    // Both endpoints (https fails to connect, then http) per attempt: the 503s came from http.
    assert_eq!(proxy.requests().len(), 4);

    let (_registry, _image, _proxy, app) = behind_proxy(Mode::Flaky { fail_first_n: 100 });
    let error = client_with(&auth_file(dir.path(), &[]), 1)
        .manifest(&app)
        .unwrap_err();
    assert!(
        error.to_string().contains("503 Service Unavailable"),
        "{error}"
    );
}

#[test]
fn wrong_blob_bytes_are_returned_for_the_store_to_catch() {
    let (_registry, image, _proxy, app) = behind_proxy(Mode::WrongBlobBytes);
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 0);
    let layer = &image.layers[1].blob;
    let bytes = read_blob(&client, &app, &digest(&layer.digest), layer.size);
    assert_eq!(bytes.len() as u64, layer.size);
    assert_ne!(Digest::sha256_of(&bytes).to_string(), layer.digest);
}

#[test]
fn a_blob_longer_than_its_descriptor_is_refused() {
    let registry = Registry::start(Auth::None).unwrap();
    let image = TestImage::build().unwrap();
    image.push(&registry, "app:v1", Format::Oci).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 0);
    let layer = &image.layers[1].blob;
    let app = reference(&registry.host(), "app:v1");
    let error = client
        .blob(&app, &digest(&layer.digest), layer.size - 1)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "blob {} of {}/app is longer than the {} bytes its descriptor gives",
            layer.digest,
            registry.host(),
            layer.size - 1
        )
    );
}

#[test]
fn redirects_to_another_host_do_not_carry_credentials() {
    let registry = Registry::start(Auth::Basic {
        user: "alice".into(),
        password: "wonderland".into(),
    })
    .unwrap();
    let image = TestImage::build().unwrap();
    image.push(&registry, "app:v1", Format::Oci).unwrap();
    let proxy = HostileProxy::start(&registry, Mode::RedirectBlobs).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(
        &auth_file(dir.path(), &[(&proxy.host(), "alice", "wonderland")]),
        0,
    );
    let app = reference(&proxy.host(), "app:v1");
    let layer = &image.layers[2].blob;
    let bytes = read_blob(&client, &app, &digest(&layer.digest), layer.size);
    assert_eq!(Digest::sha256_of(&bytes).to_string(), layer.digest);
    let blob_requests: Vec<(bool, bool)> = proxy
        .requests()
        .into_iter()
        .filter(|request| request.target.contains("/blobs/"))
        .map(|request| (request.target.starts_with("/cdn/"), request.authorization))
        .collect();
    assert_eq!(
        blob_requests,
        [(false, false), (false, true), (true, false)],
        "asked for credentials, the registry gets them; the redirect target does not"
    );
}

#[test]
fn a_digest_that_cannot_be_verified_is_refused_before_asking() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_with(&auth_file(dir.path(), &[]), 4);
    let unknown = digest(&format!("blake3:{}", "a".repeat(64)));
    let started = std::time::Instant::now();
    let error = client
        .manifest_by_digest(&reference("127.0.0.1:1", "app"), &unknown)
        .unwrap_err();
    assert!(
        started.elapsed().as_millis() < 200,
        "no request, no retries"
    );
    assert!(
        error.to_string().starts_with(&format!(
            "cannot fetch manifest 127.0.0.1:1/app@{unknown}: unsupported digest algorithm"
        )),
        "{error}"
    );
}
