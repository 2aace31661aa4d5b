// Package extauthz is warden as Envoy's external authorization service
// (envoy.service.auth.v3.Authorization over gRPC). Each CheckRequest's
// HTTP attributes become an engine.Wire, judged exactly as the gateway
// judges a request; an allow answers OK with the identity headers for the
// upstream, a refusal answers warden's own status, headers and body as the
// DeniedHttpResponse Envoy sends the client.
//
// Only ext_authz.peers may ask: from anyone else the check is denied (403)
// and logged. The gRPC health service answers for the whole server and for
// the Authorization service.
package extauthz

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/warden-gateway/warden/internal/authz"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/obs"
	"github.com/warden-gateway/warden/internal/proxy"
	"github.com/warden-gateway/warden/internal/refusal"
)

// Front names this front end in decision records.
const Front = "ext_authz"

// Server implements envoy.service.auth.v3.Authorization over an engine
// shared with the other front ends, so a reload reaches it too.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	eng *engine.Engine
}

// New makes the service over eng.
func New(eng *engine.Engine) *Server { return &Server{eng: eng} }

// NewGRPCServer is a gRPC server carrying the Authorization service and the
// health service. maxRequestBytes bounds one CheckRequest (gRPC answers a
// larger one RESOURCE_EXHAUSTED, which Envoy treats as a denial unless its
// failure_mode_allow says otherwise).
func NewGRPCServer(s *Server, maxRequestBytes int64) *grpc.Server {
	if maxRequestBytes <= 0 {
		maxRequestBytes = authz.DefaultMaxCheckBytes
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(int(maxRequestBytes)))
	authv3.RegisterAuthorizationServer(gs, s)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return gs
}

// Check judges one request.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	rt := s.eng.Runtime()
	var svc *authz.Service
	if rt != nil && rt.Services != nil {
		svc = rt.Services.ExtAuthz
	}
	asker := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		asker = p.Addr.String()
	}
	if !svc.PeerAllowed(asker) {
		d := decision.Refuse(decision.PolicyDenied, "this decision service answers only its configured peers (ext_authz.peers)")
		d.Detail = "peer " + asker + " is not in ext_authz.peers"
		return s.refuseCheck(rt, asker, nil, d), nil
	}
	var wire engine.Wire
	if msg := fromCheck(req, &wire); msg != "" {
		return s.refuseCheck(rt, asker, &wire, decision.Refuse(decision.BadRequest, msg)), nil
	}
	o := &engine.Outcome{Front: Front}
	s.eng.Judge(&wire, o)
	defer s.eng.Log(o)
	if o.Refused() {
		res := o.Response()
		o.Status, o.Bytes = res.Status, int64(len(res.Body))
		return denied(&res), nil
	}
	if o.WAFRan {
		// Nothing is served through this service: end the WAF's
		// transaction (its logging phase) now.
		o.WAF.Finish()
	}
	o.Status = http.StatusOK
	return allowed(o, &wire), nil
}

// fromCheck reads a CheckRequest's HTTP attributes into w. It returns why
// the request cannot be judged, or "".
func fromCheck(req *authv3.CheckRequest, w *engine.Wire) string {
	attrs := req.GetAttributes()
	hr := attrs.GetRequest().GetHttp()
	if hr == nil {
		return "the CheckRequest holds no HTTP request (attributes.request.http)"
	}
	header := make(http.Header, len(hr.GetHeaders())+1)
	if hm := hr.GetHeaderMap(); hm != nil && len(hm.GetHeaders()) > 0 {
		// Envoy's encode_raw_headers: one entry per header line.
		for _, hv := range hm.GetHeaders() {
			v := hv.GetValue()
			if len(hv.GetRawValue()) > 0 {
				v = string(hv.GetRawValue())
			}
			addHeader(header, hv.GetKey(), v)
		}
	} else {
		for k, v := range hr.GetHeaders() {
			addHeader(header, k, v)
		}
	}
	*w = engine.Wire{
		Method: hr.GetMethod(), Target: hr.GetPath(), Proto: hr.GetProtocol(),
		Host: hr.GetHost(), Header: header, TLS: strings.EqualFold(hr.GetScheme(), "https"),
		ContentLength: -1,
	}
	if w.Method == "" {
		return "the CheckRequest names no method"
	}
	if w.Target == "" {
		return "the CheckRequest names no path"
	}
	if w.Host == "" {
		w.Host = header.Get("Host")
	}
	sa := attrs.GetSource().GetAddress().GetSocketAddress()
	ip, err := netip.ParseAddr(sa.GetAddress())
	if err != nil || ip.Zone() != "" {
		// Without the client's address no IP rule can be judged.
		return "the CheckRequest's source address " + strconv.Quote(sa.GetAddress()) + " is not an IP address"
	}
	w.RemoteAddr = netip.AddrPortFrom(ip.Unmap(), uint16(sa.GetPortValue())).String()
	if raw := hr.GetRawBody(); len(raw) > 0 {
		w.Body, w.ContentLength = io.NopCloser(strings.NewReader(string(raw))), int64(len(raw))
	} else if b := hr.GetBody(); b != "" {
		w.Body, w.ContentLength = io.NopCloser(strings.NewReader(b)), int64(len(b))
	}
	return ""
}

// addHeader adds one of Envoy's lower-case header entries; pseudo-headers
// (":path", ":authority") are attributes of their own, not headers.
func addHeader(h http.Header, key, value string) {
	if key == "" || key[0] == ':' {
		return
	}
	k := http.CanonicalHeaderKey(key)
	h[k] = append(h[k], value)
}

// refuseCheck denies a check that cannot be judged (from a peer not
// configured, or not holding a request) and logs it.
func (s *Server) refuseCheck(rt *engine.Runtime, asker string, w *engine.Wire, d decision.Decision) *authv3.CheckResponse {
	if w == nil || w.Header == nil {
		w = &engine.Wire{Header: http.Header{}}
	}
	if w.RemoteAddr == "" {
		w.RemoteAddr = asker
	}
	o := &engine.Outcome{ID: obs.NewRequestID(), Front: Front, Runtime: rt, Now: s.eng.Now(), Wire: w}
	o.Replace(engine.StagePreRule, d)
	res := o.Response()
	o.Status, o.Bytes = res.Status, int64(len(res.Body))
	s.eng.Log(o)
	resp := denied(&res)
	if d.Code == decision.BadRequest {
		resp.Status.Code = int32(codes.InvalidArgument)
	}
	return resp
}

// skipDenied are headers of a rendered refusal Envoy sets itself.
var skipDenied = map[string]bool{"Content-Length": true, "Connection": true}

func denied(res *refusal.Response) *authv3.CheckResponse {
	headers := make([]*corev3.HeaderValueOption, 0, len(res.Header))
	for k, vs := range res.Header {
		if skipDenied[k] {
			continue
		}
		for _, v := range vs {
			headers = append(headers, header(k, v))
		}
	}
	code := codes.PermissionDenied
	if res.Status == http.StatusUnauthorized {
		code = codes.Unauthenticated
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: http.StatusText(res.Status)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(res.Status)},
			Headers: headers,
			Body:    string(res.Body),
		}},
	}
}

// allowed is the OK answer: the caller's identity and warden's request id
// for the upstream, and what the upstream must not see removed: the
// client's own X-Warden-* headers and whatever the engine dropped before
// any rule ran (names with '_', identity headers from untrusted peers).
func allowed(o *engine.Outcome, w *engine.Wire) *authv3.CheckResponse {
	id := http.Header{}
	if p := o.Caller; p != nil {
		proxy.SetIdentityHeaders(id, p.ID, p.Roles)
	}
	ok := &authv3.OkHttpResponse{}
	ok.Headers = append(ok.Headers, header("X-Request-Id", o.ID))
	for _, name := range []string{proxy.UserHeader, proxy.RolesHeader} {
		if v := id.Get(name); v != "" {
			ok.Headers = append(ok.Headers, header(name, v))
		}
	}
	remove := map[string]bool{}
	for name := range w.Header {
		if len(name) >= len(proxy.IdentityHeaderPrefix) && strings.EqualFold(name[:len(proxy.IdentityHeaderPrefix)], proxy.IdentityHeaderPrefix) && id.Get(name) == "" {
			remove[strings.ToLower(name)] = true
		}
	}
	for _, name := range o.Dropped {
		remove[strings.ToLower(name)] = true
	}
	for name := range remove {
		ok.HeadersToRemove = append(ok.HeadersToRemove, name)
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

func header(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: strings.ToLower(k), Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// Serve runs the gRPC server on ln until it stops; the logger hears why.
func Serve(gs *grpc.Server, ln net.Listener, logger *slog.Logger) error {
	err := gs.Serve(ln)
	if err != nil && logger != nil {
		logger.Error("ext_authz stopped", "error", err.Error())
	}
	return err
}
