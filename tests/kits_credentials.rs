//! The sandbox has a credential for every `${env:..}` the kits and flows in `rules/` use.

use rulebridge_sandbox as sandbox;

#[test]
fn credentials_cover_the_kits() {
    let names: Vec<&str> = sandbox::CREDENTIALS.iter().map(|(k, _)| *k).collect();
    for want in [
        "HUBSPOT_TOKEN",
        "CHATWOOT_API_KEY",
        "JAMF_API_TOKEN",
        "INTERNAL_API_KEY",
        "TASK_CRM_CLIENT_ID",
        "TASK_CRM_CLIENT_SECRET",
        "SALESFORCE_CLIENT_ID",
        "SALESFORCE_CLIENT_SECRET",
        "SALESFORCE_REFRESH_TOKEN",
        "JAMF_ENCRYPTION_KEY",
    ] {
        assert!(names.contains(&want), "{want}");
    }
    // Every `${env:NAME}` the rule files use has a sandbox value — except the generic REST
    // template, which has no fake, and Salesforce's login host, which only `connect:` reads
    // and `--sandbox` replaces with the fake's authorize and token URLs (whose port is not
    // known before it starts); comments are not references.
    let mut missing = Vec::new();
    for dir in ["rules/providers", "rules/flows"] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_stem().is_some_and(|s| s == "generic_rest") {
                continue;
            }
            let text: String = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n");
            for part in text.split("${env:").skip(1) {
                let name = part.split('}').next().unwrap();
                if !names.contains(&name) && name != "SALESFORCE_LOGIN_URL" {
                    missing.push(name.to_string());
                }
            }
        }
    }
    assert!(missing.is_empty(), "no sandbox value for {missing:?}");
    let key = sandbox::CREDENTIALS
        .iter()
        .find(|(k, _)| *k == "JAMF_ENCRYPTION_KEY")
        .unwrap()
        .1;
    assert!(fernet::Fernet::new(key).is_some(), "a valid Fernet key");
}
