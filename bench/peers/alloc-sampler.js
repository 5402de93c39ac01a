// Preloaded (--import) into a peer by `bench/gc-survival.js --sites`: V8's sampling heap profiler,
// started by the first SIGUSR2 and stopped by the second, which writes the profile to
// $WARDEN_ALLOC_PROFILE. Objects freed by scavenges and mark-compacts stay in it, so it counts what
// was allocated, not what is still alive (the default, and what --heap-prof writes).
import inspector from 'node:inspector';
import { writeFileSync } from 'node:fs';

const out = process.env.WARDEN_ALLOC_PROFILE;
const session = new inspector.Session();
session.connect();
let sampling = false;
process.on('SIGUSR2', () => {
  if (!sampling) {
    sampling = true;
    session.post('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    return;
  }
  sampling = false;
  session.post('HeapProfiler.stopSampling', (err, result) => {
    writeFileSync(out, err ? JSON.stringify({ error: err.message }) : JSON.stringify(result.profile));
  });
});
