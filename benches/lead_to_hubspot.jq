# The mapping of rules/flows/lead_to_hubspot.yaml (and its lead_routing policy) written by
# hand as a jq program, as the yardstick for `rulebridge run lead_to_hubspot --dry-run`.
# Valid for both jq (1.6+) and jaq:
#
#   jq  -nc -f benches/lead_to_hubspot.jq < leads.ndjson
#   jaq -nc -f benches/lead_to_hubspot.jq < leads.ndjson
#
# It prints the same outcome lines for well-formed leads. It does NOT reproduce:
#   * phone parsing: it keeps the digits and prefixes +1 to ten of them, where rulebridge
#     parses and validates the number with its country's numbering plan;
#   * sequencing records of the same identity across the input (rulebridge orders a repeated
#     e-mail after the first; on a dry run both print the same lines as here);
#   * per-record failures with their reasons (a bad record stops jq/jaq).

def trim_ws: sub("^\\s+"; "") | sub("\\s+$"; "");

# Words of a trimmed string, [] for "" (jq and jaq disagree on "" | split(" ")).
def words: if . == "" then [] else split(" ") end;

# First occurrence of each element, in order.
def unique_stable:
  reduce .[] as $t ({seen: {}, out: []};
    if .seen[$t] then . else .seen[$t] = true | .out += [$t] end)
  | .out;

def e164_us:
  (explode | map(select(. >= 48 and . <= 57)) | implode) as $d
  | if ($d | length) == 10 then "+1" + $d
    elif ($d | length) == 11 and ($d | startswith("1")) then "+" + $d
    else "+" + $d end;

# The lead_routing decision table, hit policy `first`.
def lead_routing:
  (.score // 0) as $s
  | ((.country // "") | ascii_upcase) as $c
  | if $s >= 80 and ($c == "US" or $c == "CA") then {owner_team: "na_sales", lead_status: "OPEN_DEAL"}
    elif $s >= 80 then {owner_team: "intl_sales", lead_status: "OPEN_DEAL"}
    elif $s >= 40 then {owner_team: "nurture", lead_status: "IN_PROGRESS"}
    else {owner_team: "marketing", lead_status: "NEW"}
    end;

def lead_to_hubspot($index):
  (.email | trim_ws | ascii_downcase) as $email
  | lead_routing as $policy
  | ((.name // "") | trim_ws | words) as $name
  | {
      index: $index,
      key: $email,
      status: "dry_run",
      payload: ({
        email: $email,
        firstname: $name[0],
        lastname: (if ($name | length) > 1 then $name[1:] | join(" ") else null end),
        company: (.company // "Unknown"),
        phone: (if .phone == null or .phone == "" then null else .phone | e164_us end),
        country: (if .country == null then null else .country | ascii_upcase end),
        lifecyclestage: "lead",
        hs_lead_status: $policy.lead_status,
        lead_owner_team: $policy.owner_team,
        lead_source: ("Lead from " + (.source // "web")),
        tags: (if (.tags // []) == [] then null else .tags | unique_stable | join(";") end),
        form_submitted_at: (if .submitted_at == null then null else .submitted_at | fromdateiso8601 | todateiso8601 end)
      } | del(.[] | nulls)),
      policy: $policy
    };

foreach inputs as $r (-1; . + 1; . as $i | $r | lead_to_hubspot($i))
