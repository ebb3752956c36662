"""Real-world secret formats and look-alikes that are not secrets, for :mod:`baseline_guard.masking`.

``SECRET_TEXTS``: (what, text, secrets): each secret must be gone from the masked text, and the
rest of the text kept. ``SECRET_KEYS``: (key, value) config entries whose value must be masked by
the key's name alone (the value looks harmless). ``NOT_SECRET``: (key, value) entries that must
come out unchanged. Values are made-up, in the published shapes (no real credential).
"""

from __future__ import annotations

SECRET_TEXTS: list[tuple[str, str, list[str]]] = [
    # connection strings
    (
        "libpq keyword/value",
        "host=db.prod port=5432 dbname=app user=app password=Tr0ub4dor&3",
        ["Tr0ub4dor&3"],
    ),
    ("libpq quoted", "host=db user=app password='it\\'s s3cret' sslmode=require", ["s3cret"]),
    ("postgres URL", "postgresql://app:S3cr3t-pass@db.prod.example:5432/app", ["S3cr3t-pass"]),
    ("postgres URL with # in the password", "postgresql://app:p#ss@db/app", ["p#ss"]),
    ("postgres URL, percent-encoded", "postgres://app:p%40ss%2Fw0rd@db:5432/app", ["p%40ss%2Fw0rd"]),
    ("JDBC query", "jdbc:postgresql://db:5432/app?user=app&password=hunter2&ssl=true", ["hunter2"]),
    ("JDBC SQL Server", "jdbc:sqlserver://db:1433;databaseName=app;user=sa;password=Sa-P4ss!;", ["Sa-P4ss!"]),
    ("ODBC", "Driver={ODBC Driver 18};Server=db;Uid=app;Pwd=0dbcPw!;Encrypt=yes", ["0dbcPw!"]),
    ("MySQL URL", "mysql://root:my-r00t-pw@127.0.0.1:3306/shop", ["my-r00t-pw"]),
    ("MongoDB SRV", "mongodb+srv://svc:m0ng0Pw@cluster0.ab1cd.mongodb.net/?retryWrites=true", ["m0ng0Pw"]),
    ("Redis URL, password only", "redis://:r3disPw@cache.internal:6379/0", ["r3disPw"]),
    ("Redis TLS URL", "rediss://default:Rd-tls-pw@cache:6380", ["Rd-tls-pw"]),
    ("AMQP URL", "amqp://guest:Rabb1tPw@mq.internal:5672/vhost", ["Rabb1tPw"]),
    (
        "S3 URL with keys",
        "s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI%2FK7MDENG@bucket/key",
        ["wJalrXUtnFEMI%2FK7MDENG", "AKIAIOSFODNN7EXAMPLE"],
    ),
    (
        "Azure storage",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=bXlrZXk9PQ==base64stuff;",
        ["bXlrZXk9PQ==base64stuff"],
    ),
    ("SMTP URL", "smtps://alerts%40example.com:Sm7pPw@smtp.example.com:465", ["Sm7pPw"]),
    # key = value in many languages and shapes
    ("German key", "kennwort=Geheim123", ["Geheim123"]),
    ("German key 2", "datenbank_passwort = 'Passw0rt!'", ["Passw0rt!"]),
    ("Russian key", "пароль=секрет42", ["секрет42"]),  # noqa: RUF001 (Cyrillic on purpose)
    ("Chinese key", "密码=mima-2024", ["mima-2024"]),
    ("Japanese key", '{"パスワード": "himitsu99"}', ["himitsu99"]),
    ("Spanish key", "contraseña: 'clave-secreta'", ["clave-secreta"]),
    ("French key", "mot_de_passe=motdepasse1", ["motdepasse1"]),
    ("Portuguese key", "senha=Senh4Forte", ["Senh4Forte"]),
    ("Polish key", "haslo=Ha5lo", ["Ha5lo"]),
    ("Dutch key", "wachtwoord=W8woord", ["W8woord"]),
    ("short key pw", "pw=abc123", ["abc123"]),
    ("short key pwd", "PWD=xyz789", ["xyz789"]),
    ("camelCase", "dbPassword=Camel-Pw1", ["Camel-Pw1"]),
    (
        "env var",
        "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
    ),
    ("YAML line", "database:\n  host: db\n  password: yaml-s3cret\n", ["yaml-s3cret"]),
    ("JSON inside a string", '{"user": "app", "password": "json-pw", "port": 5432}', ["json-pw"]),
    ("escaped JSON in a string", '"{\\"client_secret\\": \\"cs-123456\\"}"', ["cs-123456"]),
    ("api key header line", "X-Api-Key: 0123-abcd-api", ["0123-abcd-api"]),
    # URLs with secrets in the query or path
    ("api_key query", "https://api.example.com/v1/rates?base=EUR&api_key=k-123456789", ["k-123456789"]),
    ("token query", "https://gw.example/cb?token=tok_abcdef&x=1", ["tok_abcdef"]),
    ("access_token query", "https://graph.example/me?access_token=EAAGm0PX4ZCpsBA", ["EAAGm0PX4ZCpsBA"]),
    (
        "S3 presigned",
        "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261207&X-Amz-Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
        [
            "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
            "AKIAIOSFODNN7EXAMPLE%2F20261207",
        ],
    ),
    (
        "Slack webhook",
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        ["T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"],
    ),
    (
        "Discord webhook",
        "https://discord.com/api/webhooks/123456789012345678/AbCdEf-GhIjKl_MnOp",
        ["123456789012345678/AbCdEf-GhIjKl_MnOp"],
    ),
    (
        "Teams webhook",
        "https://contoso.webhook.office.com/webhookb2/abc-123@def/IncomingWebhook/xyz/789",
        ["abc-123@def/IncomingWebhook/xyz/789"],
    ),
    (
        "Telegram bot",
        "https://api.telegram.org/bot123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11/sendMessage",
        ["123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"],
    ),
    ("Apprise slack URL", "slack://TokenA/TokenB/TokenC/#general", ["TokenA/TokenB/TokenC/#general"]),
    ("Apprise mailto", "mailtos://user:Ma1lPw@smtp.example.com?to=ops@example.com", ["Ma1lPw"]),
    # tokens by their published prefixes
    ("AWS access key id", "aws_access_key_id AKIAIOSFODNN7EXAMPLE in the log", ["AKIAIOSFODNN7EXAMPLE"]),
    ("AWS STS key id", "key ASIAY34FZKBOKMUTVV7A expired", ["ASIAY34FZKBOKMUTVV7A"]),
    (
        "GitHub PAT classic",
        "cloning with ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8 failed",
        ["ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"],
    ),
    (
        "GitHub OAuth",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        ["gho_16C7e42F292c6912E7710c838347Ae178B4a"],
    ),
    (
        "GitHub fine-grained",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF",
        ["github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF"],
    ),
    ("GitLab PAT", "glpat-xxxxxxxxxxxxxxxxxxxx used", ["glpat-xxxxxxxxxxxxxxxxxxxx"]),
    (
        "Slack bot token",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        ["xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"],
    ),
    ("Slack user token", "xoxp-1234-5678-91011-abcdef", ["xoxp-1234-5678-91011-abcdef"]),
    (
        "Google API key",
        "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI",
        ["AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI"],
    ),
    (
        "Google OAuth token",
        "ya29.a0AfH6SMBx-example-token_value123",
        ["ya29.a0AfH6SMBx-example-token_value123"],
    ),
    ("Stripe live key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", ["sk_live_4eC39HqLyjWDarjtT1zdp7dc"]),
    (
        "Stripe webhook secret",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    ),
    ("OpenAI key", "sk-proj-abcdefghijklmnopqrstuvwxyz012345", ["sk-proj-abcdefghijklmnopqrstuvwxyz012345"]),
    ("npm token", "npm_abcdefghijklmnopqrstuvwxyz0123456789", ["npm_abcdefghijklmnopqrstuvwxyz0123456789"]),
    (
        "PyPI token",
        "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmdoLWlqa2wtbW5vcC1xcnN0LXV2d3h5ejAxMjM0",
        ["pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmdoLWlqa2wtbW5vcC1xcnN0LXV2d3h5ejAxMjM0"],
    ),
    ("Vault token", "hvs.CAESIJlWh0jbyvmVbl8dyq7O5bKe", ["hvs.CAESIJlWh0jbyvmVbl8dyq7O5bKe"]),
    (
        "SendGrid key",
        "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",
        ["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"],
    ),
    (
        "JWT",
        "session eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok",
        [
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
        ],
    ),
    ("Bearer header", "Authorization: Bearer abc.def-ghi_jkl", ["abc.def-ghi_jkl"]),
    ("Basic header", "Authorization: Basic dXNlcjpwYXNzd29yZA==", ["dXNlcjpwYXNzd29yZA=="]),
    (
        "PEM private key",
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----\n",
        ["-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"],
    ),
    (
        "high-entropy token in prose",
        "upstream refused token ZmF0LXRva2VuLTk4NzY1NDMyMTA-abcXYZ for fx",
        ["ZmF0LXRva2VuLTk4NzY1NDMyMTA-abcXYZ"],
    ),
    ("error with a DSN", "connection to postgresql://svc:Xy9-pw@10.0.0.5/app failed: timeout", ["Xy9-pw"]),
]

SECRET_KEYS: list[tuple[str, str]] = [
    ("db_password", "changeme"),
    ("DB_PASS", "letmein"),
    ("pw", "1234"),
    ("pwd", "abcd"),
    ("smtpPassword", "mail"),
    ("kennwort", "geheim"),
    ("Passwort", "geheim"),
    ("пароль", "секрет"),
    ("密码", "mima"),
    ("パスワード", "himitsu"),
    ("비밀번호", "bimil"),
    ("contraseña", "clave"),
    ("mot_de_passe", "secret"),
    ("senha", "segredo"),
    ("hasło", "tajne"),
    ("salasana", "salainen"),
    ("lösenord", "hemligt"),
    ("api_key", "abc"),
    ("apiKey", "abc"),
    ("X-API-Key", "abc"),
    ("client_secret", "abc"),
    ("access_token", "abc"),
    ("refresh-token", "abc"),
    ("auth", "user:pw"),
    ("signing_key", "abc"),
    ("encryption_key", "abc"),
    ("stripe_key", "abc"),
    ("dsn", "https://abc@sentry.example/1"),
    ("credentials", "abc"),
    ("session_cookie", "abc"),
]

NOT_SECRET: list[tuple[str, str]] = [
    ("passenger_count", "4"),
    ("author", "Jane Doe"),
    ("authors", "Jane, John"),
    ("compass", "north"),
    ("bypass_cache", "true"),
    ("password_policy_min_length", "12"),  # describes passwords, holds none
    ("min_password_length", "12"),
    ("password_expiry_days", "90"),
    ("token_ttl", "3600"),
    ("max_tokens", "4096"),
    ("password_file", "/run/secrets/db"),  # a path to a secret, not the secret
    ("public_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh0b3N0 ops@example"),
    ("cache_key", "search:v2:eur"),
    ("partition_key", "tenant_id"),
    ("X-Route-Key", "proj-a"),  # the gateway's routing key header: names an environment
    ("oauth_token_url", "https://login.example.com/oauth2/token"),
    ("auth_mode", "oidc"),
    ("client_id", "baseline-guard"),
    ("search_page_size", "20"),
    ("fx_url", "https://fx.prod.example/v2/rates?base=EUR&symbols=USD"),
    ("booking_mail", "smtp3.prod.example"),
    ("greeting", "Welcome to the hotel booking test environment"),
    ("build", "2026-11-30T13:00:00Z"),
    ("feature_flags", "search_v2,quote_cache,order_async"),
    ("passport_required", "true"),
    ("pass_rate_threshold", "0.99"),
    ("keyboard_layout", "de"),
    ("monkey", "banana"),
    ("checksum", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    (
        "message",
        "s3://bucket/backups/proj-a/20261207T101500Z-pre_test-1a2b3c4d/booking.dump has sha256 "
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, the manifest says another",
    ),
    ("trace", "trace 4bf92f3577b34da6a3ce929d0e0e4736 run manual__2026-12-07T10:00:00+00:00"),
    ("request_id", "123e4567-e89b-12d3-a456-426614174000"),
    ("database_url", "postgresql://db.prod.example:5432/app"),  # no password in it
    ("copy", "booking_inventory_reconciliation_ledger_archive__restore_0000abcd"),
    ("error", "restore of booking failed: pg_restore exited with status 1: relation already exists"),
    ("http", "GET https://gw.example/api/hotels?city=Berlin&checkin=2026-12-24 answered 503"),
    ("yaml", "retries: 3\ntimeout: 30s\nmode: strict\n"),
    ("dag_run", "scheduled__2026-12-07T10:00:00+00:00"),
    ("s3_key", "checks/reports/proj-a/20261207T101500Z/business_check.html"),
]
