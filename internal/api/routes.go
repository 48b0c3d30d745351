package api

import (
	"errors"
	"net/http"

	"github.com/lading-dev/lading/internal/errdefs"
)

// routes registers every endpoint. Adding an endpoint: a line here, a
// handler that calls one service function, and a row in the
// authorization test (internal/registry/server/authz_rows_test.go).
func (s *Server) routes() {
	p := Prefix
	// System.
	s.handle("GET "+p+"/ping", s.ping)
	s.handle("GET "+p+"/health", s.health)
	s.handle("GET "+p+"/systeminfo", s.systemInfo)
	s.handle("GET "+p+"/configurations", s.getConfigurations)
	s.handle("PUT "+p+"/configurations", s.putConfigurations)
	s.handle("GET "+p+"/search", s.search)
	s.handle("GET "+p+"/statistics", s.statistics)
	// Users.
	s.handle("GET "+p+"/users", s.listUsers)
	s.handle("POST "+p+"/users", s.createUser)
	s.handle("GET "+p+"/users/current", s.currentUser)
	s.handle("GET "+p+"/users/current/permissions", s.currentPermissions)
	s.handle("GET "+p+"/users/search", s.searchUsers)
	s.handle("GET "+p+"/users/{user_id}", s.getUser)
	s.handle("PUT "+p+"/users/{user_id}", s.updateUser)
	s.handle("DELETE "+p+"/users/{user_id}", s.deleteUser)
	s.handle("PUT "+p+"/users/{user_id}/sysadmin", s.setSysAdmin)
	s.handle("PUT "+p+"/users/{user_id}/password", s.setPassword)
	s.handle("PUT "+p+"/users/{user_id}/cli_secret", s.setCLISecret)
	// User groups and the identity sources.
	s.handle("GET "+p+"/usergroups", s.listGroups)
	s.handle("POST "+p+"/usergroups", s.createGroup)
	s.handle("GET "+p+"/usergroups/search", s.searchGroups)
	s.handle("GET "+p+"/usergroups/{group_id}", s.getGroup)
	s.handle("PUT "+p+"/usergroups/{group_id}", s.updateGroup)
	s.handle("DELETE "+p+"/usergroups/{group_id}", s.deleteGroup)
	s.handle("POST "+p+"/ldap/ping", s.ldapPing)
	s.handle("GET "+p+"/ldap/users/search", s.ldapSearchUsers)
	s.handle("POST "+p+"/ldap/users/import", s.ldapImportUsers)
	s.handle("GET "+p+"/ldap/groups/search", s.ldapSearchGroups)
	s.handle("POST "+p+"/system/oidc/ping", s.oidcPing)
	// Robots.
	s.handle("GET "+p+"/robots", s.listRobots)
	s.handle("POST "+p+"/robots", s.createRobot)
	s.handle("GET "+p+"/robots/{robot_id}", s.getRobot)
	s.handle("PUT "+p+"/robots/{robot_id}", s.updateRobot)
	s.handle("PATCH "+p+"/robots/{robot_id}", s.refreshRobot)
	s.handle("DELETE "+p+"/robots/{robot_id}", s.deleteRobot)
	// Projects.
	s.handle("GET "+p+"/projects", s.listProjects)
	s.handle("HEAD "+p+"/projects", s.headProject)
	s.handle("POST "+p+"/projects", s.createProject)
	s.handle("GET "+p+"/projects/{project_name_or_id}", s.getProject)
	s.handle("PUT "+p+"/projects/{project_name_or_id}", s.updateProject)
	s.handle("DELETE "+p+"/projects/{project_name_or_id}", s.deleteProject)
	s.handle("GET "+p+"/projects/{project_name_or_id}/_deletable", s.projectDeletable)
	s.handle("GET "+p+"/projects/{project_name_or_id}/summary", s.projectSummary)
	s.handle("GET "+p+"/projects/{project_name_or_id}/members", s.listMembers)
	s.handle("POST "+p+"/projects/{project_name_or_id}/members", s.createMember)
	s.handle("GET "+p+"/projects/{project_name_or_id}/members/{mid}", s.getMember)
	s.handle("PUT "+p+"/projects/{project_name_or_id}/members/{mid}", s.updateMember)
	s.handle("DELETE "+p+"/projects/{project_name_or_id}/members/{mid}", s.deleteMember)
	for _, m := range []string{"/metadatas", "/metadatas/"} {
		s.handle("GET "+p+"/projects/{project_name_or_id}"+m, s.listMetadata)
		s.handle("POST "+p+"/projects/{project_name_or_id}"+m, s.addMetadata)
	}
	s.handle("GET "+p+"/projects/{project_name_or_id}/metadatas/{meta_name}", s.getMetadata)
	s.handle("PUT "+p+"/projects/{project_name_or_id}/metadatas/{meta_name}", s.updateMetadata)
	s.handle("DELETE "+p+"/projects/{project_name_or_id}/metadatas/{meta_name}", s.deleteMetadata)
	s.handle("GET "+p+"/projects/{project_name}/logs", s.projectLogs)
	s.handle("GET "+p+"/projects/{project_name}/auditlog-exts", s.projectLogExts)
	// Repositories, artifacts, tags.
	s.handle("GET "+p+"/repositories", s.listAllRepositories)
	const repo = "/projects/{project_name}/repositories/{repository_name}"
	s.handle("GET "+p+"/projects/{project_name}/repositories", s.listRepositories)
	s.handle("GET "+p+repo, s.getRepository)
	s.handle("PUT "+p+repo, s.updateRepository)
	s.handle("DELETE "+p+repo, s.deleteRepository)
	s.handle("GET "+p+repo+"/artifacts", s.listArtifacts)
	s.handle("POST "+p+repo+"/artifacts", s.copyArtifact)
	s.handle("GET "+p+repo+"/artifacts/{reference}", s.getArtifact)
	s.handle("DELETE "+p+repo+"/artifacts/{reference}", s.deleteArtifact)
	s.handle("GET "+p+repo+"/artifacts/{reference}/tags", s.listTags)
	s.handle("POST "+p+repo+"/artifacts/{reference}/tags", s.createTag)
	s.handle("DELETE "+p+repo+"/artifacts/{reference}/tags/{tag_name}", s.deleteTag)
	s.handle("GET "+p+repo+"/artifacts/{reference}/accessories", s.listAccessories)
	// Signatures (lading's, beyond Harbor: see api/trust.go).
	s.handle("GET "+p+repo+"/artifacts/{reference}/signatures", s.artifactSignatures)
	s.handle("GET "+p+"/projects/{project_name_or_id}/trust-policy", s.getTrustPolicy)
	s.handle("PUT "+p+"/projects/{project_name_or_id}/trust-policy", s.putTrustPolicy)
	s.handle("DELETE "+p+"/projects/{project_name_or_id}/trust-policy", s.deleteTrustPolicy)
	// Scanning.
	s.handle("POST "+p+repo+"/artifacts/{reference}/scan", s.scanArtifact)
	s.handle("POST "+p+repo+"/artifacts/{reference}/scan/stop", s.stopScanArtifact)
	s.handle("GET "+p+repo+"/artifacts/{reference}/scan/{report_id}/log", s.scanLog)
	s.handle("GET "+p+repo+"/artifacts/{reference}/additions/vulnerabilities", s.vulnerabilities)
	s.handle("GET "+p+repo+"/artifacts/{reference}/additions/{addition}", s.addition)
	s.handle("GET "+p+"/system/scanAll/schedule", s.getScanAllSchedule)
	s.handle("POST "+p+"/system/scanAll/schedule", s.setScanAllSchedule)
	s.handle("PUT "+p+"/system/scanAll/schedule", s.setScanAllSchedule)
	s.handle("POST "+p+"/system/scanAll/stop", s.stopScanAll)
	s.handle("GET "+p+"/scans/all/metrics", s.scanAllMetrics(false))
	s.handle("GET "+p+"/scans/schedule/metrics", s.scanAllMetrics(true))
	s.handle("GET "+p+"/system/CVEAllowlist", s.getSystemAllowlist)
	s.handle("PUT "+p+"/system/CVEAllowlist", s.putSystemAllowlist)
	s.handle("GET "+p+"/scanners", s.listScanners)
	s.handle("POST "+p+"/scanners", s.createScanner)
	s.handle("POST "+p+"/scanners/ping", s.pingScanner)
	s.handle("GET "+p+"/scanners/{registration_id}", s.getScanner)
	s.handle("PUT "+p+"/scanners/{registration_id}", s.updateScanner)
	s.handle("PATCH "+p+"/scanners/{registration_id}", s.setDefaultScanner)
	s.handle("DELETE "+p+"/scanners/{registration_id}", s.deleteScanner)
	s.handle("GET "+p+"/scanners/{registration_id}/metadata", s.scannerMetadata)
	s.handle("GET "+p+"/projects/{project_name_or_id}/scanner", s.getProjectScanner)
	s.handle("PUT "+p+"/projects/{project_name_or_id}/scanner", s.setProjectScanner)
	s.handle("GET "+p+"/projects/{project_name_or_id}/scanner/candidates", s.scannerCandidates)
	// Quotas.
	s.handle("GET "+p+"/quotas", s.listQuotas)
	s.handle("GET "+p+"/quotas/{id}", s.getQuota)
	s.handle("PUT "+p+"/quotas/{id}", s.updateQuota)
	// Audit logs.
	s.handle("GET "+p+"/audit-logs", s.auditLogs)
	s.handle("GET "+p+"/auditlog-exts", s.auditLogExts)
	s.handle("GET "+p+"/auditlog-exts/events", s.auditEventTypes)
	// Webhooks.
	const hook = "/projects/{project_name_or_id}/webhook"
	s.handle("GET "+p+hook+"/policies", s.listWebhookPolicies)
	s.handle("POST "+p+hook+"/policies", s.createWebhookPolicy)
	s.handle("GET "+p+hook+"/policies/{webhook_policy_id}", s.getWebhookPolicy)
	s.handle("PUT "+p+hook+"/policies/{webhook_policy_id}", s.updateWebhookPolicy)
	s.handle("DELETE "+p+hook+"/policies/{webhook_policy_id}", s.deleteWebhookPolicy)
	s.handle("GET "+p+hook+"/policies/{webhook_policy_id}/executions", s.listWebhookExecutions)
	s.handle("GET "+p+hook+"/policies/{webhook_policy_id}/executions/{execution_id}/tasks", s.listWebhookTasks)
	s.handle("GET "+p+hook+"/policies/{webhook_policy_id}/executions/{execution_id}/tasks/{task_id}/log", s.webhookTaskLog)
	s.handle("GET "+p+hook+"/events", s.webhookEvents)
	// The job service.
	s.handle("GET "+p+"/jobservice/pools", s.jobPools)
	s.handle("GET "+p+"/jobservice/pools/{pool_id}/workers", s.jobWorkers)
	s.handle("PUT "+p+"/jobservice/jobs/{job_id}", s.stopJob)
	s.handle("GET "+p+"/jobservice/jobs/{job_id}/log", s.jobLog)
	s.handle("GET "+p+"/jobservice/queues", s.jobQueues)
	s.handle("PUT "+p+"/jobservice/queues/{job_type}", s.jobQueueAction)
	s.handle("GET "+p+"/schedules", s.listSchedules)
	s.handle("GET "+p+"/schedules/{job_type}/paused", s.schedulePaused)
	// Registries and replication.
	s.handle("GET "+p+"/registries", s.listRegistries)
	s.handle("POST "+p+"/registries", s.createRegistry)
	s.handle("POST "+p+"/registries/ping", s.pingRegistry)
	s.handle("GET "+p+"/registries/{id}", s.getRegistry)
	s.handle("PUT "+p+"/registries/{id}", s.updateRegistry)
	s.handle("DELETE "+p+"/registries/{id}", s.deleteRegistry)
	s.handle("GET "+p+"/registries/{id}/info", s.registryInfo)
	s.handle("GET "+p+"/replication/adapters", s.replicationAdapters)
	s.handle("GET "+p+"/replication/adapterinfos", s.replicationAdapterInfos)
	s.handle("GET "+p+"/replication/policies", s.listReplicationPolicies)
	s.handle("POST "+p+"/replication/policies", s.createReplicationPolicy)
	s.handle("GET "+p+"/replication/policies/{id}", s.getReplicationPolicy)
	s.handle("PUT "+p+"/replication/policies/{id}", s.updateReplicationPolicy)
	s.handle("DELETE "+p+"/replication/policies/{id}", s.deleteReplicationPolicy)
	s.handle("GET "+p+"/replication/executions", s.listReplicationExecutions)
	s.handle("POST "+p+"/replication/executions", s.startReplication)
	s.handle("GET "+p+"/replication/executions/{id}", s.getReplicationExecution)
	s.handle("PUT "+p+"/replication/executions/{id}", s.stopReplication)
	s.handle("GET "+p+"/replication/executions/{id}/tasks", s.listReplicationTasks)
	s.handle("GET "+p+"/replication/executions/{id}/tasks/{task_id}/log", s.replicationTaskLog)
	// Immutable tags, labels, retention, GC, purge (lifecycle.go).
	s.lifecycleRoutes()
	// The login form.
	s.handle("POST /c/login", s.login)
	s.handle("GET /c/oidc/login", s.oidcLogin)
	s.handle("GET /c/oidc/callback", s.oidcCallback)
	s.handle("POST /c/oidc/onboard", s.oidcOnboard)
	s.handle("GET /c/log_out", s.logout)
	s.handle("POST /c/log_out", s.logout)

	s.handle(p+"/", func(c *call) error {
		return errdefs.NotFound(errors.New("no API endpoint at " + c.r.Method + " " + c.r.URL.Path))
	})
	s.handle("/c/", func(c *call) error {
		return errdefs.NotFound(errors.New("no endpoint at " + c.r.URL.Path))
	})
}

func (s *Server) ping(c *call) error {
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	c.w.WriteHeader(http.StatusOK)
	c.w.Write([]byte("Pong"))
	return nil
}
