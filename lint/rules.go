package lint

import "slices"

// Severity says whether nutcracker refuses the file (error) or accepts something harmful
// (warning).
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Rule describes one check.
type Rule struct {
	ID          string
	Severity    Severity
	Description string
}

// Rule IDs. Errors are exactly what the target nutcracker refuses; warnings are accepted
// by nutcracker but do harm.
const (
	RuleYAMLSyntax          = "yaml-syntax"
	RuleYAMLDocument        = "yaml-document"
	RuleYAMLToken           = "yaml-token"
	RuleYAMLStructure       = "yaml-structure"
	RuleEmptyValue          = "empty-value"
	RuleUnknownKey          = "unknown-key"
	RuleDuplicateKey        = "duplicate-key"
	RuleInvalidBool         = "invalid-bool"
	RuleInvalidNumber       = "invalid-number"
	RuleInvalidHash         = "invalid-hash"
	RuleInvalidDistribution = "invalid-distribution"
	RuleInvalidHashTag      = "invalid-hash-tag"
	RuleInvalidListen       = "invalid-listen"
	RuleMissingListen       = "missing-listen"
	RuleInvalidServer       = "invalid-server"
	RuleZeroWeight          = "zero-weight"
	RuleNoServers           = "no-servers"
	RuleDuplicateServer     = "duplicate-server"
	RuleDuplicateListen     = "duplicate-listen"
	RuleDuplicatePool       = "duplicate-pool"
	RuleRedisAuthMemcache   = "redis-auth-memcache"
	RuleServerConnZero      = "server-connections-zero"

	RuleClientConnections = "client-connections-ignored"
	RuleNoTimeout         = "no-timeout"
	RuleServerConnMany    = "server-connections-many"
	RuleAutoEjectModula   = "auto-eject-modula"
	RuleCRC32Ketama       = "crc32-ketama"
	RuleNoKetamaPoints    = "zero-ketama-points"
	RuleSharedBackend     = "shared-backend-mismatch"
	RuleRedisDBUnix       = "redis-db-unix"
	RuleRedisDBAuth       = "redis-db-auth"
	RuleOpenListen        = "open-listen-no-auth"
	RuleLongServerName    = "long-server-name"
	RuleDuplicateAddress  = "duplicate-address"
	RuleRead              = "read"
	RuleEmptyServerName   = "empty-server-name"
	RuleNumberOverflow    = "number-overflow"
	RuleListenPerm        = "listen-perm-not-octal"
	RuleListenDNS         = "listen-needs-dns"
	RuleEmptyRedisAuth    = "empty-redis-auth"
)

var rules = []Rule{
	{RuleYAMLSyntax, SeverityError, "libyaml cannot parse the file"},
	{RuleYAMLDocument, SeverityError, "the file must hold exactly one YAML document"},
	{RuleYAMLToken, SeverityError, "directives, document markers, flow style, anchors, aliases and tags are disallowed"},
	{RuleYAMLStructure, SeverityError, "the file must be a mapping of pools, each a mapping of keys with exactly one list (servers)"},
	{RuleEmptyValue, SeverityError, "empty values are refused (0.5.0 and later)"},
	{RuleUnknownKey, SeverityError, "the key is not known to the target nutcracker version"},
	{RuleDuplicateKey, SeverityError, "a key is given twice in a pool"},
	{RuleInvalidBool, SeverityError, "booleans must be exactly true or false"},
	{RuleInvalidNumber, SeverityError, "numbers must be plain decimal digits"},
	{RuleInvalidHash, SeverityError, "hash is not a hash function of the target version"},
	{RuleInvalidDistribution, SeverityError, "distribution must be ketama, modula or random"},
	{RuleInvalidHashTag, SeverityError, "hash_tag must be exactly two bytes"},
	{RuleInvalidListen, SeverityError, "listen must be host:port or /path/to/socket [octal permissions], with a resolvable host"},
	{RuleMissingListen, SeverityError, "every pool needs listen:"},
	{RuleInvalidServer, SeverityError, "server lines must be host:port:weight [name] or /path/to/socket:weight [name]"},
	{RuleZeroWeight, SeverityError, "a server weight of 0 is refused (0.4.0 and later)"},
	{RuleNoServers, SeverityError, "every pool needs at least one server"},
	{RuleDuplicateServer, SeverityError, "two servers of a pool have the same hash name"},
	{RuleRead, SeverityError, "a file could not be read"},
	{RuleDuplicateListen, SeverityError, "two pools have the same listen string"},
	{RuleDuplicatePool, SeverityError, "two pools have the same name"},
	{RuleRedisAuthMemcache, SeverityError, "redis_auth is only valid with redis: true (0.4.1 and later)"},
	{RuleServerConnZero, SeverityError, "server_connections cannot be 0"},

	{RuleClientConnections, SeverityWarning, "client_connections is never enforced by any nutcracker version"},
	{RuleNoTimeout, SeverityWarning, "without timeout, requests to a hung server wait forever"},
	{RuleServerConnMany, SeverityWarning, "server_connections above 1 breaks read-your-writes for pipelined clients"},
	{RuleAutoEjectModula, SeverityWarning, "auto_eject_hosts with modula remaps almost every key when a server is ejected"},
	{RuleCRC32Ketama, SeverityWarning, "crc32 returns 15 bits: with ketama every key lands on one server"},
	{RuleNoKetamaPoints, SeverityWarning, "the weights give a server no ketama points, so it never receives keys"},
	{RuleSharedBackend, SeverityWarning, "pools sharing a backend with different hash or distribution map the same key to different servers"},
	{RuleRedisDBUnix, SeverityWarning, "redis_db is not applied to unix-socket backends"},
	{RuleRedisDBAuth, SeverityWarning, "redis_db fails with backends that need AUTH (SELECT is sent before AUTH)"},
	{RuleOpenListen, SeverityWarning, "the pool listens on all interfaces without redis_auth"},
	{RuleLongServerName, SeverityWarning, "server names over 80 bytes overflow the ketama buffer in 0.4.1 and older; over 270 bytes 0.5.0 truncates them on the ketama ring"},
	{RuleDuplicateAddress, SeverityWarning, "the same backend listed twice under two names gets both weights: twice its share of keys"},
	{RuleEmptyServerName, SeverityWarning, "a server line ending in a space has an empty name, and nutcracker hashes it as ''"},
	{RuleNumberOverflow, SeverityWarning, "numbers past 2^31-1 silently wrap around"},
	{RuleListenPerm, SeverityWarning, "unix listen permissions that are not octal digits are read as something else"},
	{RuleListenDNS, SeverityWarning, "the listen host needs name resolution, which nutcracker does at startup; not verified"},
	{RuleEmptyRedisAuth, SeverityWarning, "an empty redis_auth means no password, and 0.5.0 refuses it"},
}

// Rules returns every rule, errors first.
func Rules() []Rule { return slices.Clone(rules) }
