package access

// Resource is what an action applies to, as Harbor names it.
type Resource string

// Action is what a subject does to a resource.
type Action string

// Harbor's resources (src/common/rbac/const.go). Self is the project (or,
// at system level, the system) itself.
const (
	Self               Resource = ""
	All                Resource = "*"
	Configuration      Resource = "configuration"
	Label              Resource = "label"
	Log                Resource = "log"
	LdapUser           Resource = "ldap-user"
	Member             Resource = "member"
	Metadata           Resource = "metadata"
	Quota              Resource = "quota"
	Repository         Resource = "repository"
	TagRetention       Resource = "tag-retention"
	ImmutableTag       Resource = "immutable-tag"
	Robot              Resource = "robot"
	NotificationPolicy Resource = "notification-policy"
	Scan               Resource = "scan"
	SBOM               Resource = "sbom"
	Scanner            Resource = "scanner"
	Artifact           Resource = "artifact"
	Tag                Resource = "tag"
	Accessory          Resource = "accessory"
	ArtifactAddition   Resource = "artifact-addition"
	ArtifactLabel      Resource = "artifact-label"
	PreheatPolicy      Resource = "preheat-policy"
	PreheatInstance    Resource = "preheat-instance"
	AuditLog           Resource = "audit-log"
	Catalog            Resource = "catalog"
	Project            Resource = "project"
	User               Resource = "user"
	UserGroup          Resource = "user-group"
	Registry           Resource = "registry"
	Replication        Resource = "replication"
	Distribution       Resource = "distribution"
	GarbageCollection  Resource = "garbage-collection"
	ReplicationAdapter Resource = "replication-adapter"
	ReplicationPolicy  Resource = "replication-policy"
	ScanAll            Resource = "scan-all"
	SystemVolumes      Resource = "system-volumes"
	PurgeAuditLog      Resource = "purge-audit"
	ExportCVE          Resource = "export-cve"
	JobServiceMonitor  Resource = "jobservice-monitor"
	SecurityHub        Resource = "security-hub"
)

// Harbor's actions.
const (
	AnyAction   Action = "*"
	Pull        Action = "pull"
	Push        Action = "push"
	Create      Action = "create"
	Read        Action = "read"
	Update      Action = "update"
	Delete      Action = "delete"
	List        Action = "list"
	Operate     Action = "operate"
	ScannerPull Action = "scanner-pull"
	Stop        Action = "stop"
)

// Role is a project role, with Harbor's ids.
type Role int

// Harbor's project roles and their ids.
const (
	ProjectAdmin Role = 1
	Developer    Role = 2
	Guest        Role = 3
	Maintainer   Role = 4
	LimitedGuest Role = 5
)

// Roles lists the roles by id.
var Roles = []Role{ProjectAdmin, Developer, Guest, Maintainer, LimitedGuest}

// Name is the role's name in Harbor's API (role_name).
func (r Role) Name() string {
	switch r {
	case ProjectAdmin:
		return "projectAdmin"
	case Developer:
		return "developer"
	case Guest:
		return "guest"
	case Maintainer:
		return "maintainer"
	case LimitedGuest:
		return "limitedGuest"
	}
	return ""
}

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r.Name() != "" }

// Policies is a set of actions per resource.
type Policies map[Resource][]Action

// Has reports whether p allows a on r.
func (p Policies) Has(r Resource, a Action) bool {
	for _, x := range p[r] {
		if x == a || x == AnyAction {
			return true
		}
	}
	return false
}

var (
	crud     = []Action{Create, Read, Update, Delete}
	crudl    = []Action{Create, Read, Update, Delete, List}
	crudlOp  = []Action{Create, Read, Update, Delete, List, Operate}
	readList = []Action{Read, List}
)

// Matrix is Harbor's project role matrix (src/common/rbac/project/
// rbac_role.go): what each role may do to the resources of a project. It
// is the one source of project permissions: the access checker answers
// from it and the authorization test derives its expectations from it.
var Matrix = map[Role]Policies{
	ProjectAdmin: {
		Self:               {Read, Update, Delete},
		Member:             crudl,
		Metadata:           crud,
		Log:                {List},
		Label:              crudl,
		Quota:              {Read},
		Repository:         {Create, Read, Update, Delete, List, Pull, Push},
		TagRetention:       crudlOp,
		ImmutableTag:       {Create, Update, Delete, List},
		Configuration:      {Read, Update},
		Robot:              crudl,
		NotificationPolicy: {Create, Update, Delete, List, Read},
		Scan:               {Create, Read, Stop},
		SBOM:               {Create, Stop, Read},
		Scanner:            {Read, Create},
		Artifact:           {Create, Read, Delete, List},
		ArtifactAddition:   {Read},
		Tag:                {List, Create, Delete},
		Accessory:          {List},
		ArtifactLabel:      {Create, Delete},
		PreheatPolicy:      crudl,
		ExportCVE:          {Create, Read, List},
	},
	Maintainer: {
		Self:               {Read},
		Member:             readList,
		Metadata:           {Read},
		Quota:              {Read},
		Label:              crudl,
		Repository:         {Create, Read, Update, Delete, List, Push, Pull},
		TagRetention:       crudlOp,
		Accessory:          {List},
		ImmutableTag:       {Create, Update, Delete, List},
		Configuration:      {Read},
		Robot:              readList,
		NotificationPolicy: readList,
		Scan:               {Create, Read, Stop},
		SBOM:               {Create, Stop, Read},
		Scanner:            {Read},
		Artifact:           {Create, Read, Delete, List},
		ArtifactAddition:   {Read},
		Tag:                {List, Create, Delete},
		ArtifactLabel:      {Create, Delete},
		ExportCVE:          {Create, Read, List},
	},
	Developer: {
		Self:             {Read},
		Member:           readList,
		Label:            readList,
		Quota:            {Read},
		Repository:       {Create, Read, Update, List, Push, Pull},
		TagRetention:     crudlOp,
		Configuration:    {Read},
		Robot:            readList,
		Scan:             {Read},
		SBOM:             {Read},
		Scanner:          {Read},
		Artifact:         {Create, Read, List},
		ArtifactAddition: {Read},
		Tag:              {List, Create},
		Accessory:        {List},
		ArtifactLabel:    {Create, Delete},
		ExportCVE:        {Create, Read, List},
	},
	Guest: {
		Self:             {Read},
		Member:           readList,
		Label:            readList,
		Quota:            {Read},
		Repository:       {Read, List, Pull},
		Configuration:    {Read},
		Robot:            readList,
		Scan:             {Read},
		SBOM:             {Read},
		Scanner:          {Read},
		Tag:              {List},
		Accessory:        {List},
		Artifact:         readList,
		ArtifactAddition: {Read},
	},
	LimitedGuest: {
		Self:             {Read},
		Quota:            {Read},
		Repository:       {List, Read, Pull},
		Configuration:    {Read},
		Scan:             {Read},
		SBOM:             {Read},
		Scanner:          {Read},
		Tag:              {List},
		Accessory:        {List},
		Artifact:         readList,
		ArtifactAddition: {Read},
	},
}

// PublicProject is what everyone, anonymous callers included, may do in a
// public project (Harbor's publicProjectPolicies).
var PublicProject = Policies{
	Self:             {Read},
	Label:            readList,
	Repository:       {List, Pull},
	Scan:             {Read},
	Scanner:          {Read},
	Tag:              {List},
	Artifact:         readList,
	ArtifactAddition: {Read},
	Accessory:        {List},
}

// RobotSystemPolicies are the system-level permissions a robot may be
// given (Harbor's PoliciesMap[System] with the no-limit provider's
// additions).
var RobotSystemPolicies = Policies{
	AuditLog:           {List},
	PreheatInstance:    crudl,
	Project:            {List, Create},
	ReplicationPolicy:  crudl,
	Replication:        {Read, Create, List},
	ReplicationAdapter: {List},
	Registry:           crudl,
	ScanAll:            {Read, Update, Stop, Create},
	SystemVolumes:      {Read},
	GarbageCollection:  {Read, Create, List, Update, Stop},
	PurgeAuditLog:      {Read, Create, List, Update, Stop},
	JobServiceMonitor:  {List, Stop},
	Scanner:            crudl,
	Label:              crud,
	SecurityHub:        readList,
	Catalog:            {Read},
	Quota:              {Read, List, Update},
	Robot:              {Create, Read, List, Delete},
	User:               crudl,
	LdapUser:           {Create, List},
	UserGroup:          crudl,
}

// RobotProjectPolicies are the project-level permissions a robot may be
// given (Harbor's PoliciesMap[Project] with the no-limit provider's
// additions).
var RobotProjectPolicies = Policies{
	Log:                {List},
	Project:            {Read, Delete, Update},
	Metadata:           crudl,
	Repository:         {Read, Update, Delete, List, Pull, Push},
	Artifact:           {Read, Create, List, Delete},
	Scan:               {Create, Read, Stop},
	SBOM:               {Create, Stop, Read},
	Tag:                {Create, List, Delete},
	Accessory:          {List},
	ArtifactAddition:   {Read},
	ArtifactLabel:      {Create, Delete},
	Scanner:            {Create, Read},
	PreheatPolicy:      crudl,
	ImmutableTag:       {Create, Delete, List, Update},
	NotificationPolicy: crudl,
	TagRetention:       crudl,
	Label:              crudl,
	Quota:              {Read},
	Robot:              {Create, Read, List, Delete},
	ExportCVE:          {Create, Read},
	Member:             crudl,
}
