//! The table of the panel's simple resources: per resource, its API path, its list
//! columns, its create and edit form fields, whether it is per account.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Text,
    Password,
    Number,
    /// Comma-separated → a JSON array of strings.
    List,
    /// Comma-separated numbers → a JSON array of numbers.
    Numbers,
    Bool,
    /// A JSON value typed in a text area.
    Json,
}

#[derive(Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    pub required: bool,
}

pub struct Resource {
    pub slug: &'static str,
    pub title: &'static str,
    /// Where the API lists (GET), creates (POST) and removes (DELETE `{api}/{id}`) them.
    pub api: &'static str,
    /// The create form; empty: nothing to create here.
    pub fields: &'static [Field],
    /// The remove button's label; `None`: no button.
    pub remove: Option<&'static str>,
    /// What the create answer holds that is shown only once (a key, a password, a secret).
    pub once: &'static str,
    /// Rows have a Test button (`POST {api}/{id}/test`).
    pub test: bool,
    /// The edit form (`GET {api}/{id}` fills it, `PUT {api}/{id}` saves it); empty: rows
    /// are not edited here.
    pub edit: &'static [Field],
    /// The API lists them for one account only: an admin (who has none) picks one.
    pub per_account: bool,
}

const fn field(name: &'static str, label: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        name,
        label,
        kind,
        required,
    }
}

/// A routing rule's fields (the create form adds the account).
const RULE_FIELDS: &[Field] = &[
    field("name", "Name", Kind::Text, true),
    field("priority", "Priority (lower first)", Kind::Number, true),
    field("provider_id", "Provider id", Kind::Number, true),
    field(
        "fallbacks",
        "Fallback provider ids (comma-separated)",
        Kind::Numbers,
        false,
    ),
    field(
        "conditions",
        "Conditions (JSON, e.g. {\"recipient_domains\": [\"example.org\"]})",
        Kind::Json,
        false,
    ),
    field("enabled", "Enabled", Kind::Bool, false),
];

const ACCOUNT: Field = field("account_id", "Account id (admins)", Kind::Number, false);

pub const RESOURCES: &[Resource] = &[
    Resource {
        slug: "accounts",
        title: "Accounts",
        api: "/accounts",
        fields: &[
            field("name", "Name", Kind::Text, true),
            field("email", "Email (SMTP login)", Kind::Text, true),
            field("password", "Password", Kind::Password, true),
            field(
                "allowed_domains",
                "Sender domains you vouch for (verified at once; comma-separated)",
                Kind::List,
                false,
            ),
            field("monthly_limit", "Monthly limit", Kind::Number, false),
        ],
        remove: Some("Delete"),
        once: "the account's first API key",
        test: false,
        // Suspending holds the account's mail and shuts its people out; `active` undoes it.
        // Sandbox mode captures everything the account sends (unticking it is audited).
        edit: &[
            field("status", "Status: active or suspended", Kind::Text, true),
            field(
                "sandbox",
                "Sandbox mode: capture everything it sends",
                Kind::Bool,
                false,
            ),
        ],
        per_account: false,
    },
    Resource {
        slug: "api-keys",
        title: "API keys",
        api: "/api-keys",
        fields: &[ACCOUNT],
        remove: Some("Revoke"),
        once: "the API key",
        test: false,
        edit: &[],
        per_account: true,
    },
    Resource {
        slug: "smtp-credentials",
        title: "SMTP credentials",
        api: "/smtp-credentials",
        fields: &[
            field("username", "Username", Kind::Text, true),
            field("password", "Password", Kind::Password, true),
            ACCOUNT,
        ],
        remove: Some("Revoke"),
        once: "",
        test: false,
        edit: &[],
        per_account: true,
    },
    Resource {
        slug: "suppressions",
        title: "Suppressions",
        api: "/suppressions",
        fields: &[
            field("address", "Address", Kind::Text, true),
            field("reason", "Reason", Kind::Text, false),
            ACCOUNT,
        ],
        remove: Some("Delete"),
        once: "",
        test: false,
        edit: &[],
        per_account: true,
    },
    Resource {
        slug: "routing-rules",
        title: "Routing rules",
        api: "/routing-rules",
        fields: &[
            RULE_FIELDS[0],
            RULE_FIELDS[1],
            RULE_FIELDS[2],
            RULE_FIELDS[3],
            RULE_FIELDS[4],
            RULE_FIELDS[5],
            ACCOUNT,
        ],
        remove: Some("Delete"),
        once: "",
        test: false,
        edit: RULE_FIELDS,
        per_account: false,
    },
    Resource {
        slug: "providers",
        title: "Providers",
        api: "/providers",
        // Created and edited on the providers pages, with a form per type.
        fields: &[],
        remove: Some("Delete"),
        once: "",
        test: false,
        edit: &[],
        per_account: false,
    },
    Resource {
        slug: "webhook-endpoints",
        title: "Webhook endpoints",
        api: "/webhook-endpoints",
        fields: &[
            field("url", "URL", Kind::Text, true),
            field("events", "Events (comma-separated, or *)", Kind::List, true),
            ACCOUNT,
        ],
        remove: Some("Delete"),
        once: "the signing secret",
        test: false,
        edit: &[
            field("url", "URL", Kind::Text, true),
            field("events", "Events (comma-separated, or *)", Kind::List, true),
            field("enabled", "Enabled", Kind::Bool, false),
            field(
                "secret",
                "New signing secret (empty: keep the current one)",
                Kind::Password,
                false,
            ),
        ],
        per_account: true,
    },
    Resource {
        slug: "dkim-keys",
        title: "DKIM keys",
        api: "/dkim-keys",
        fields: &[
            field("domain", "Domain", Kind::Text, true),
            field("selector", "Selector", Kind::Text, true),
            field(
                "algorithm",
                "Algorithm (rsa-sha256 or ed25519-sha256)",
                Kind::Text,
                false,
            ),
            ACCOUNT,
        ],
        remove: Some("Delete"),
        once: "",
        test: false,
        edit: &[],
        per_account: true,
    },
    Resource {
        slug: "smtp-connections",
        title: "SMTP connections (this node, live)",
        api: "/smtp/connections",
        fields: &[],
        remove: Some("Close"),
        once: "",
        test: false,
        edit: &[],
        per_account: false,
    },
    Resource {
        slug: "mailbox-servers",
        title: "IMAP / POP3 servers (optional, not used for delivery)",
        api: "/mailbox-servers",
        fields: &[
            field("name", "Name", Kind::Text, true),
            field("protocol", "Protocol (imap or pop3)", Kind::Text, true),
            field("host", "Host", Kind::Text, true),
            field(
                "security",
                "Security (none, starttls or tls)",
                Kind::Text,
                true,
            ),
            field(
                "port",
                "Port (empty: 143 / 993 / 110 / 995)",
                Kind::Number,
                false,
            ),
            field("username", "User", Kind::Text, true),
            field("password", "Password", Kind::Password, true),
            field(
                "skip_tls_verify",
                "Ignore certificate validation",
                Kind::Bool,
                false,
            ),
        ],
        remove: Some("Delete"),
        once: "",
        test: true,
        edit: &[],
        per_account: false,
    },
];

pub(super) fn resource(slug: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.slug == slug)
}
