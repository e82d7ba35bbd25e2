//! Stable diagnostic codes. A code is never reused for a different meaning; retired codes stay
//! listed. Every code has a fixture under `tests/fixtures/diagnostics/`.

use super::Severity;

macro_rules! codes {
    ($($variant:ident = $code:literal, $sev:ident, $summary:literal;)*) => {
        /// A stable diagnostic code such as `RB1002`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $(#[doc = $summary] $variant,)*
        }

        impl Code {
            /// All codes, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as printed, e.g. `RB1002`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// One-line summary, used in docs and SARIF rule metadata.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }

            pub fn default_severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$sev,)* }
            }
        }
    };
}

codes! {
    // Reading rule files.
    YamlSyntax = "RB0001", Error, "the file is not valid YAML";
    UnknownKind = "RB0002", Error, "unknown document kind";
    UnknownKey = "RB0003", Error, "unknown key";
    WrongType = "RB0004", Error, "value has the wrong type";
    MissingField = "RB0005", Error, "required field is missing";
    DuplicateName = "RB0006", Error, "two documents of one kind share a name";
    UnreadableFile = "RB0007", Error, "a rule file could not be read";
    InvalidValue = "RB0008", Error, "value is not one of the allowed values";
    InvalidDuration = "RB0009", Error, "invalid duration or rate";
    InvalidSecretRef = "RB0010", Error, "invalid secret reference";
    EmptyRuleSet = "RB0011", Warning, "no rule files found";
    EmptyFile = "RB0012", Warning, "a rule file holds no document";
    // Endpoints (`kind: endpoint`).
    EndpointUnknownFlow = "RB0020", Error, "an endpoint sends to an unknown flow";
    EndpointMethod = "RB0021", Error, "an endpoint's method is not POST, PUT or PATCH";
    EndpointPath = "RB0022", Error, "an endpoint's path cannot be served";
    EndpointRouteTaken = "RB0023", Error, "two endpoints answer the same method and path";
    EndpointStatusWord = "RB0024", Error, "an endpoint's `statuses` maps no outcome status";
    // Expressions.
    ExprSyntax = "RB1001", Error, "expression syntax error";
    UnknownFunction = "RB1002", Error, "unknown function";
    WrongArity = "RB1003", Error, "wrong number of arguments";
    ArgumentType = "RB1004", Error, "argument has the wrong type";
    OperatorType = "RB1005", Error, "operator applied to values of the wrong type";
    NonBooleanCondition = "RB1006", Error, "condition is not boolean";
    UnknownField = "RB1007", Error, "field is not in the declared record schema";
    InvalidJsonPath = "RB1008", Error, "invalid JSONPath query";
    InvalidArgument = "RB1009", Error, "constant argument is invalid (regex, format, key)";
    TemplateSyntax = "RB1010", Error, "template syntax error";
    UnknownVariable = "RB1011", Error, "unknown variable in template";
    LetCycle = "RB1012", Error, "named values (`let`) depend on each other in a cycle";
    UnusedLet = "RB1013", Warning, "a named value (`let`) is never used";
    LetShadows = "RB1014", Error, "a named value (`let`) has the name of a record field or binding";
    LetType = "RB1015", Error, "a named value does not fit its declared type";
    InterpolationType = "RB1016", Error, "an interpolated value cannot be written as text";
    // Flows and cross-file references.
    UnknownReference = "RB2001", Error, "reference to an undefined provider, object, policy, record or flow";
    TargetType = "RB2002", Error, "mapped value does not fit the target field's declared type";
    UnknownTargetField = "RB2003", Error, "target field is not declared by the provider object";
    MissingRequiredTarget = "RB2004", Error, "a required target field is not mapped";
    UnknownMatchKey = "RB2005", Error, "duplicate rule matches on a field the mapping does not produce";
    PolicyInputMissing = "RB2006", Error, "policy input is not available in the flow's record";
    SecretInOutput = "RB2007", Warning, "a secret flows into a payload field unsealed";
    UnknownPolicyOutput = "RB2008", Error, "`policy.NAME` is not an output of the flow's policy table";
    ExtensionFieldConflict = "RB2010", Error, "an extension declares a field the provider object already declares";
    ExtendsUndeclaredObject = "RB2011", Error, "an extension adds fields to an object that declares none";
    FieldNotInRemote = "RB2012", Error, "a mapped field is missing from the target's discovered fields";
    // References between objects.
    UnknownRefObject = "RB2015", Error, "a reference (`ref:`) names an object the flow's provider does not have";
    RefWithoutSearch = "RB2016", Error, "a referenced object has no search operation to find its records by";
    UnknownRefField = "RB2017", Error, "a reference finds records by a field the referenced object does not declare";
    RefSearchMismatch = "RB2018", Error, "the search operation does not look records up by the fields a reference or match key names";
    RefKeyType = "RB2019", Error, "a reference's key value is not a string, number or boolean";
    // Policy tables.
    RowArity = "RB3001", Error, "row has the wrong number of cells";
    UnreachableRow = "RB3002", Error, "row can never match under hit policy `first`";
    OverlappingRows = "RB3003", Error, "rows overlap under hit policy `unique`";
    NoDefaultRow = "RB3004", Warning, "table has no row that matches every input";
    OutputType = "RB3005", Error, "output value has the wrong type";
    CellSyntax = "RB3006", Error, "cell is not a valid test";
    // Tests.
    TestUnknownFlow = "RB4001", Error, "test refers to an undefined flow or policy";
    TestInvalid = "RB4002", Error, "test case is malformed";
    TestExpectsMissing = "RB4003", Error, "test expects a field or policy output its flow or policy never produces";
    // Providers.
    UnknownTemplateFilter = "RB5001", Error, "template uses a filter or test that does not exist";
    UnknownProviderSecret = "RB5002", Error, "template reads a secret the provider does not declare";
    InvalidHeader = "RB5003", Error, "invalid HTTP header name or value";
    UnknownFieldType = "RB5004", Error, "a `fields` operation maps a vendor type to an unknown field type";
    InvalidUsagePattern = "RB5005", Error, "a rate-limit `usage` header has no valid pattern";
    FieldsOnlyKey = "RB5006", Warning, "a key only `fields` operations read, on another operation";
    OperationOnlyKey = "RB5007", Warning, "an operation key (`idempotent`, `matched`, `total`, `max_url_length`) on an operation that does not read it";
    BatchNotRead = "RB5008", Error, "a batch operation whose templates never read the batch";
    GroupByNotBatch = "RB5010", Error, "`batch.group_by` on an operation that does not send batches";
    GroupByType = "RB5011", Error, "a batch group key that is an array or object";
    FirstItemForBatch = "RB5012", Warning, "a batch request reads the first item's value for the whole batch";
    // Secrets.
    SecretKey = "RB5020", Error, "an identity key or outcome key is derived from a secret";
    // SQL providers (`type: sql`).
    SqlColumnsUnchecked = "RB5030", Warning, "a SQL provider's tables could not be read, so mapped columns are not checked";
    SqlUnknownTable = "RB5031", Error, "a flow writes a table the database (after its migrations) does not have";
    SqlIdentifier = "RB5032", Error, "a table or column name that is not a plain SQL identifier";
    SqlMigration = "RB5033", Error, "a SQL provider's migration is missing, has no variant for the backend, or fails";
    SqlNoPrimaryKey = "RB5034", Error, "a table written by a flow has no single-column primary key";
    SqlDatabase = "RB5035", Error, "a SQL provider's `database` is neither an SQLite file nor a PostgreSQL URL";
    // Kit configuration and the connection test.
    ConfigUnread = "RB5050", Warning, "a `config:` field the kit never reads (as `${secret:PROVIDER.NAME}` or `${env:PROVIDER_NAME}`)";
    ConfigUndeclared = "RB5051", Error, "a kit with a `config:` section reads `${secret:PROVIDER.NAME}` of a field it does not declare";
    TestWrites = "RB5052", Warning, "a `test` operation that is not a GET: a connection test must not write";
    // OAuth connect (`connect:`).
    ConnectUrl = "RB5060", Error, "a `connect:` URL that is not an http(s) URL, or is relative with no `login_url` to resolve it against";
    ConnectSecretLiteral = "RB5061", Error, "a `connect:` client secret written into the kit instead of a secret reference";
    ConnectReservedParam = "RB5062", Error, "`connect.params` sets a parameter the connect flow sets itself (client_id, redirect_uri, scope, state, response_type)";
    ConnectNoScopes = "RB5063", Warning, "a `connect:` section that asks for no scopes";
    ConnectLoginUnused = "RB5064", Warning, "`connect.login_url` given while every `connect:` URL is absolute: it has no effect";
    // Multi-flow runs.
    FlowCycle = "RB6001", Error, "flows depend on each other in a cycle (`depends_on` or references)";
    UnknownDependency = "RB6002", Error, "`depends_on` names a flow that does not exist";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique() {
        let set: HashSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(set.len(), Code::ALL.len());
    }
}
