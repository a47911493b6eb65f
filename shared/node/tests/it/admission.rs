//! Admission: submissions queued together are verified as one signature batch, and each
//! submitter still gets exactly its own answers (in order), whatever else shared the batch.

use crate::common::{Ctx, network, new_sim};
use cbdc_ledger::testkit::{key, tx_id, wallet_id};
use cbdc_node::{MempoolError, SubmitError};
use commonware_runtime::{Runner as _, deterministic};

#[test]
fn submissions_admitted_together_are_answered_each_their_own() {
    deterministic::Runner::default().start(|context: Ctx| async move {
        let sim = new_sim();
        let oracle = network(&context).await;
        let node = sim.start(&context, &oracle, 0).await;
        let pay = |n: u64| {
            sim.net.pay(tx_id(n), 1_000, &key("alice"), wallet_id("alice"), wallet_id("bob"), n)
        };
        let mut forged = pay(3);
        if let Some(sig) = forged.signatures.first_mut() {
            sig.signature.0[0] ^= 1;
        }
        // All three are queued before the actor runs: it takes them in one drain.
        let (one, batch, other) = futures::join!(
            node.mailbox.submit(pay(1)),
            node.mailbox.submit_batch(vec![pay(2), forged, pay(1)]),
            node.mailbox.submit_batch(vec![pay(4)]),
        );
        assert_eq!(one, Ok(()));
        assert_eq!(
            batch,
            Ok(vec![
                Ok(()),
                Err(SubmitError::BadSignature),
                Err(SubmitError::Mempool(MempoolError::Duplicate)),
            ])
        );
        assert_eq!(other, Ok(vec![Ok(())]));
        // A later submission of an admitted one is a duplicate; of the forged one, still bad.
        assert_eq!(
            node.mailbox.submit(pay(2)).await,
            Err(SubmitError::Mempool(MempoolError::Duplicate))
        );
        let mut forged = pay(3);
        if let Some(sig) = forged.signatures.first_mut() {
            sig.signature.0[0] ^= 1;
        }
        assert_eq!(node.mailbox.submit(forged).await, Err(SubmitError::BadSignature));
        assert_eq!(node.mailbox.submit(pay(3)).await, Ok(()));
    });
}
