// Package pki creates, and on later starts reuses, the cluster's certificate authorities,
// certificates, service-account key and kubeconfigs, laid out like k3s's:
//
//	<data-dir>/server/tls/   (ControlPlaneOptions.Dir, mode 0700)
//	  client-ca.crt/.key           signs every client certificate
//	  server-ca.crt/.key           signs every serving certificate
//	  request-header-ca.crt/.key   signs only the front-proxy client certificate
//	  service.key, service.pub     service-account token signing key (RSA 2048)
//	  serving-kube-apiserver.crt/.key
//	  client-kube-apiserver.crt/.key   kube-apiserver -> kubelet
//	  client-auth-proxy.crt/.key       kube-apiserver -> aggregated API servers
//	  client-admin.crt/.key, client-controller.crt/.key,
//	  client-scheduler.crt/.key, client-kube-proxy.crt/.key
//	<data-dir>/server/cred/  (ControlPlaneOptions.CredDir, mode 0700)
//	  admin.kubeconfig, controller.kubeconfig, scheduler.kubeconfig, kubeproxy.kubeconfig
//	<data-dir>/agent/tls/    (NodeOptions.Dir, mode 0700)
//	  server-ca.crt, client-ca.crt (copies, so a joined node needs nothing from the server's disk)
//	  serving-kubelet.crt/.key, client-kubelet.crt/.key, client-kube-proxy.crt/.key
//	  kubelet.kubeconfig, kubeproxy.kubeconfig (or in NodeOptions.CredDir)
//
// Which file goes to which flag (CAs by role, so that a client certificate can never pass as
// a serving one):
//
//	kube-apiserver   --client-ca-file=ClientCA  --tls-cert-file/--tls-private-key-file=APIServerCert/Key
//	                 --kubelet-certificate-authority=ServerCA
//	                 --kubelet-client-certificate/--kubelet-client-key=APIServerKubeletClientCert/Key
//	                 --requestheader-client-ca-file=RequestHeaderCA --requestheader-allowed-names=system:auth-proxy
//	                 --proxy-client-cert-file/--proxy-client-key-file=FrontProxyClientCert/Key
//	                 --service-account-key-file=ServiceAccountPub --service-account-signing-key-file=ServiceAccountKey
//	kube-controller-manager  --service-account-private-key-file=ServiceAccountKey --root-ca-file=ServerCA
//	                 --cluster-signing-kubelet-serving-{cert,key}-file=ServerCA/ServerCAKey
//	                 --cluster-signing-legacy-unknown-{cert,key}-file=ServerCA/ServerCAKey
//	                 --cluster-signing-kubelet-client-{cert,key}-file=ClientCA/ClientCAKey
//	                 --cluster-signing-kube-apiserver-client-{cert,key}-file=ClientCA/ClientCAKey
//	kubelet          authentication.x509.clientCAFile=Node.ClientCA, tlsCertFile/tlsPrivateKeyFile=Node.KubeletServingCert/Key
//
// Keys are 0600, certificates and public keys 0644, kubeconfigs 0600. Every file is written
// atomically (temporary file, then rename), so a crash never leaves half a PEM behind.
//
// Certificate authorities and the service-account key are created once and never replaced:
// replacing one would silently invalidate every certificate or token issued under it, so a
// damaged one is an error for the operator to resolve. Leaf certificates are cheap and are
// re-issued (with a fresh key) when their key is missing or does not match, they no longer
// verify against their CA for their purpose, they expire within 90 days, their subject
// changed, or (serving certificates) their SANs do not cover the wanted names. Anything that
// passes these checks is left byte for byte as it is, so restarts are fast and components
// watching the files see no change.
package pki
