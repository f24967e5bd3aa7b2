// The in-memory mesh of real Routers: it lives in scripts/bench (the mesh benchmarks use it, and bench code
// must not import from test/); the tests import it from here as before.
export {
  buildSim,
  chainTopology,
  gridTopology,
  MeshSim,
  type SimNode,
} from '../../scripts/bench/mesh-sim.js';
