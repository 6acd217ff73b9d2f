//! End-to-end tests

#[test]
fn cluster_starts_with_a_role_per_auth_method() {
    let c = pggat::cluster::Cluster::start(&Default::default()).unwrap();
    let roles = c.sql("postgres", "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'pggat_%'").unwrap();
    assert_eq!(roles, "pggat_cleartext,pggat_md5,pggat_scram,pggat_trust");
}
