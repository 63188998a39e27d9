package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/cli"

	"github.com/helm-canary/helm-canary/release"
	"github.com/helm-canary/helm-canary/routesim"
)

type routeFlags struct {
	host          string
	headers       []string
	cookies       []string
	path          string
	method        string
	users         int
	userHeader    string
	output        string
	port          uint32
	sni           string
	clusterDomain string
	mesh          release.MeshTarget
}

func newRouteCmd(settings *cli.EnvSettings) *cobra.Command {
	var f routeFlags
	cmd := &cobra.Command{
		Use:   "route [RELEASE]",
		Short: "Show which subset serves a request, by the manifest's Istio routing rules",
		Long: `route applies Istio's HTTP routing rules of a manifest (on stdin, or RELEASE's deployed
manifest) to a request: first matching http route wins; header, URI, method and query
matches with exact, prefix and regex (RE2, whole value); weights as probabilities. The
gateway's user tagging (userPercent) is computed exactly as the rendered filter does.

With --users N --user-header NAME it routes N synthetic users (user-1 ... user-N) and
prints the share of each subset: how a rollout will split users, checked before shipping.

With --port N it routes a connection to that port of the Service as Istio does for the
port's protocol (appProtocol or name prefix): tcp routes for TCP ports, tls routes
matched on --sni (default --host) for TLS ports, and says so when no route applies
and connections reach the pods by pod count (UDP, or a port no route covers).`,
		Example: `  helm canary route shop --host reviews -H 'end-user: jason'
  helm canary route shop --host reviews --cookie gray=true -o json
  helm canary route shop --host app-a --users 10000 --user-header x-user-id
  helm canary route cache --host redis --port 6379
  helm template shop ./chart | helm-canary render --config canary.yaml | helm-canary route --host reviews`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("want at most RELEASE, got %d arguments", len(args))}
			}
			if f.host == "" {
				return usageError{fmt.Errorf("--host is required: the Service or gateway host the request is for")}
			}
			if f.users < 0 {
				return usageError{fmt.Errorf("--users %d: must be 0 or more", f.users)}
			}
			if f.users > 0 && f.userHeader == "" {
				return usageError{fmt.Errorf("--users needs --user-header, the header that carries the user id")}
			}
			if f.output != "text" && f.output != "json" {
				return usageError{fmt.Errorf("-o %s: use text or json", f.output)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var manifest []byte
			namespace, domain := explicitNamespace(cmd, settings), f.clusterDomain
			if len(args) == 1 {
				c, err := release.New(settings, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				c.SetMesh(f.mesh)
				m, err := c.RoutingManifest(args[0])
				if err != nil {
					return err
				}
				manifest, namespace = m, c.Namespace
				if !cmd.Flags().Changed("cluster-domain") {
					if domain, err = c.ClusterDomain(args[0]); err != nil {
						return err
					}
				}
			} else {
				var err error
				if manifest, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			router, err := routesim.New(manifest, namespace, domain)
			if err != nil {
				return err
			}
			req := routesim.Request{Host: f.host, Path: f.path, Method: f.method, Headers: map[string]string{}, Port: f.port, SNI: f.sni}
			for _, h := range f.headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok {
					return usageError{fmt.Errorf("-H %q: want 'name: value'", h)}
				}
				req.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			if len(f.cookies) > 0 {
				cookie := strings.Join(f.cookies, "; ")
				if prev := req.Headers["cookie"]; prev != "" {
					cookie = prev + "; " + cookie
				}
				req.Headers["cookie"] = cookie
			}
			out := cmd.OutOrStdout()
			if f.users > 0 {
				shares, err := router.Users(f.host, f.userHeader, f.users, req)
				if err != nil {
					return err
				}
				if f.output == "json" {
					return json.NewEncoder(out).Encode(map[string]any{"host": f.host, "shares": shares})
				}
				fmt.Fprintf(out, "%d users by %s to %s:\n%s", f.users, f.userHeader, f.host, formatShares(shares))
				return nil
			}
			res, err := router.Route(req)
			if err != nil {
				return err
			}
			if f.output == "json" {
				return json.NewEncoder(out).Encode(res)
			}
			target := f.host
			if f.port != 0 {
				target = fmt.Sprintf("%s:%d (%s)", f.host, f.port, protocolName(res.Protocol))
			}
			if res.Note != "" {
				fmt.Fprintf(out, "%s -> %s\n%s", target, res.Note, formatShares(res.Shares))
				return nil
			}
			fmt.Fprintf(out, "%s -> %s (VirtualService %s, route %s)\n%s", target, subsetName(res.Subset), res.VirtualService, res.Route, formatShares(res.Shares))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.host, "host", "", "the host the request is for (a Service, or a gateway host)")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "request header 'name: value' (repeatable)")
	fl.StringArrayVar(&f.cookies, "cookie", nil, "cookie 'k=v' (repeatable; sent in the cookie header)")
	fl.StringVar(&f.path, "path", "/", "request path, with an optional ?query")
	fl.StringVar(&f.method, "method", "GET", "request method")
	fl.IntVar(&f.users, "users", 0, "route this many synthetic users and print each subset's share")
	fl.StringVar(&f.userHeader, "user-header", "", "with --users: the header carrying the user id")
	fl.StringVarP(&f.output, "output", "o", "text", "text or json")
	fl.Uint32Var(&f.port, "port", 0, "the Service port: a TCP or TLS port (by Istio's protocol selection) takes the tcp or tls routes")
	fl.StringVar(&f.clusterDomain, "cluster-domain", "", "the cluster's DNS domain, when not cluster.local (default: the release's canary.clusterDomain)")
	fl.StringVar(&f.sni, "sni", "", "with --port on a TLS port: the server name the client sends (default: --host)")
	addMeshFlags(fl, &f.mesh)
	return cmd
}

func protocolName(p string) string {
	if p == "" {
		return "protocol detected by Istio"
	}
	return p
}

func subsetName(s string) string {
	if s == "" {
		return "(the Service's pods, no subset)"
	}
	return s
}

func formatShares(shares map[string]float64) string {
	keys := make([]string, 0, len(shares))
	for k := range shares {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-12s %6.2f%%\n", subsetName(k), shares[k]*100)
	}
	return b.String()
}
