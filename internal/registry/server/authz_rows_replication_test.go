package server_test

import (
	"context"

	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/registry"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/replication"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/endpoint"
	lreplication "github.com/lading-dev/lading/internal/replication"
)

// freshRegistry registers the server itself (type harbor, on loopback,
// which the authorization env allows) as an endpoint.
func freshRegistry(t *testingT, e *env, _ proj) any {
	id, err := e.srv.Core.Replication.CreateRegistry(context.Background(), e.admin, lreplication.Registry{Name: e.fresh("reg"),
		Endpoint: endpoint.Endpoint{Type: "harbor", URL: e.srv.URL, Credential: endpoint.Credential{Type: "basic", AccessKey: "admin", AccessSecret: "Harbor12345"}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// freshReplicationPolicy creates a manual push-based policy whose filter
// matches nothing.
func freshReplicationPolicy(t *testingT, e *env, p proj) any {
	reg := freshRegistry(t, e, p).(int64)
	id, err := e.srv.Core.Replication.CreatePolicy(context.Background(), e.admin, lreplication.Policy{Name: e.fresh("rp"), DestRegistry: reg, Enabled: true,
		Filters: []lreplication.Filter{{Type: "name", Value: "nothing/matches"}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// freshReplicationExecution starts a run of a fresh policy.
func freshReplicationExecution(t *testingT, e *env, p proj) any {
	id, err := e.srv.Core.Replication.Start(context.Background(), e.admin, freshReplicationPolicy(t, e, p).(int64))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func replicationPolicy(e *env, dest int64) *models.ReplicationPolicy {
	return &models.ReplicationPolicy{Name: e.fresh("rp"), Enabled: true, DestRegistry: &models.Registry{ID: dest},
		Filters: []*models.ReplicationFilter{{Type: "name", Value: "nothing/matches"}}}
}

// replicationRows are the endpoints of registries and replication: system
// resources (registry, replication-policy, replication,
// replication-adapter).
func replicationRows() []row {
	return []row{
		{name: "GET /registries", scope: system, res: access.Registry, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Registry.ListRegistries(ctx, registry.NewListRegistriesParams()))
		}},
		{name: "POST /registries", scope: system, res: access.Registry, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, _ any) error {
			return ignore(c.Registry.CreateRegistry(ctx, registry.NewCreateRegistryParams().WithRegistry(&models.Registry{Name: e.fresh("reg"), Type: "harbor", URL: e.srv.URL,
				Credential: &models.RegistryCredential{Type: "basic", AccessKey: "admin", AccessSecret: "Harbor12345"}})))
		}},
		{name: "POST /registries/ping", scope: system, res: access.Registry, act: access.Read, setup: freshRegistry, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Registry.PingRegistry(ctx, registry.NewPingRegistryParams().WithRegistry(&models.RegistryPing{ID: ptr(id.(int64))})))
		}},
		{name: "GET /registries/{id}", scope: system, res: access.Registry, act: access.Read, setup: freshRegistry, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Registry.GetRegistry(ctx, registry.NewGetRegistryParams().WithID(id.(int64))))
		}},
		{name: "GET /registries/{id}/info", scope: system, res: access.Registry, act: access.Read, setup: freshRegistry, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Registry.GetRegistryInfo(ctx, registry.NewGetRegistryInfoParams().WithID(id.(int64))))
		}},
		{name: "PUT /registries/{id}", scope: system, res: access.Registry, act: access.Update, setup: freshRegistry, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Registry.UpdateRegistry(ctx, registry.NewUpdateRegistryParams().WithID(id.(int64)).WithRegistry(&models.RegistryUpdate{Description: ptr("changed")})))
		}},
		{name: "DELETE /registries/{id}", scope: system, res: access.Registry, act: access.Delete, setup: freshRegistry, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Registry.DeleteRegistry(ctx, registry.NewDeleteRegistryParams().WithID(id.(int64))))
		}},
		{name: "GET /replication/adapters", scope: system, res: access.ReplicationAdapter, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Registry.ListRegistryProviderTypes(ctx, registry.NewListRegistryProviderTypesParams()))
		}},
		{name: "GET /replication/adapterinfos", scope: system, res: access.ReplicationAdapter, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Registry.ListRegistryProviderInfos(ctx, registry.NewListRegistryProviderInfosParams()))
		}},
		{name: "GET /replication/policies", scope: system, res: access.ReplicationPolicy, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Replication.ListReplicationPolicies(ctx, replication.NewListReplicationPoliciesParams()))
		}},
		{name: "POST /replication/policies", scope: system, res: access.ReplicationPolicy, act: access.Create, setup: freshRegistry, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, reg any) error {
			return ignore(c.Replication.CreateReplicationPolicy(ctx, replication.NewCreateReplicationPolicyParams().WithPolicy(replicationPolicy(e, reg.(int64)))))
		}},
		{name: "GET /replication/policies/{id}", scope: system, res: access.ReplicationPolicy, act: access.Read, setup: freshReplicationPolicy, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Replication.GetReplicationPolicy(ctx, replication.NewGetReplicationPolicyParams().WithID(id.(int64))))
		}},
		{name: "PUT /replication/policies/{id}", scope: system, res: access.ReplicationPolicy, act: access.Update, setup: freshReplicationPolicy, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, id any) error {
			p, err := e.srv.Core.Replication.Policy(ctx, e.admin, id.(int64))
			if err != nil {
				return err
			}
			return ignore(c.Replication.UpdateReplicationPolicy(ctx, replication.NewUpdateReplicationPolicyParams().WithID(id.(int64)).WithPolicy(replicationPolicy(e, p.DestRegistry))))
		}},
		{name: "DELETE /replication/policies/{id}", scope: system, res: access.ReplicationPolicy, act: access.Delete, setup: freshReplicationPolicy, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Replication.DeleteReplicationPolicy(ctx, replication.NewDeleteReplicationPolicyParams().WithID(id.(int64))))
		}},
		{name: "GET /replication/executions", scope: system, res: access.Replication, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Replication.ListReplicationExecutions(ctx, replication.NewListReplicationExecutionsParams()))
		}},
		{name: "POST /replication/executions", scope: system, res: access.Replication, act: access.Create, setup: freshReplicationPolicy, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Replication.StartReplication(ctx, replication.NewStartReplicationParams().WithExecution(&models.StartReplicationExecution{PolicyID: id.(int64)})))
		}},
		{name: "GET /replication/executions/{id}", scope: system, res: access.Replication, act: access.Read, setup: freshReplicationExecution, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Replication.GetReplicationExecution(ctx, replication.NewGetReplicationExecutionParams().WithID(id.(int64))))
		}},
		{name: "PUT /replication/executions/{id}", scope: system, res: access.Replication, act: access.Create, setup: freshReplicationExecution, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Replication.StopReplication(ctx, replication.NewStopReplicationParams().WithID(id.(int64))))
		}},
		{name: "GET /replication/executions/{id}/tasks", scope: system, res: access.Replication, act: access.List, setup: freshReplicationExecution, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Replication.ListReplicationTasks(ctx, replication.NewListReplicationTasksParams().WithID(id.(int64))))
		}},
		// A task that does not exist: allowed subjects learn so (404).
		{name: "GET /replication/executions/{id}/tasks/{unknown}/log", scope: system, res: access.Replication, act: access.Read, other: true, setup: freshReplicationExecution, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Replication.GetReplicationLog(ctx, replication.NewGetReplicationLogParams().WithID(id.(int64)).WithTaskID(1<<40)))
		}},
	}
}
