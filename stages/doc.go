// Package stages turns a stage name (stable, 10, 90, 100, swap, final or any weight
// 0..100) into what it means for production, the canary and their traffic, with no
// cluster and no Helm involved.
//
// The table it encodes is the one in the product contract:
//
//	stage    production pods     canary pods   traffic production/canary
//	stable   pinned (P)          0             100/0
//	0..100   pinned (P)          Rc            100-w/w
//	swap     rendered (N)        Rc            0/100
//	final    rendered (N)        0             100/0
//
// "Pinned" means the pod template production runs now; "rendered" means the one the
// chart renders now.
package stages
