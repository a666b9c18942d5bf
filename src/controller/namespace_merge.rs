//! Merge the watch streams of several namespaces into one stream that a
//! single reflector store can consume. A store is replaced wholesale on each
//! `InitDone`, so per-namespace re-lists must not reach it as such: the first
//! lists of all namespaces are buffered and released as one initial list
//! (the store is "ready" only when every namespace is known, so history
//! lookups never miss a namespace at startup); later re-lists of one
//! namespace become `Apply` events plus `Delete`s for the objects that
//! disappeared meanwhile.

use std::collections::{BTreeMap, HashSet};

use futures::stream::{self, BoxStream, Stream, StreamExt};
use kube::runtime::watcher::{self, Event};
use kube::ResourceExt;

type Item<K> = Result<Event<K>, watcher::Error>;

/// Merge per-namespace watcher streams (`streams[i]` watches `namespaces[i]`).
/// `tombstone(namespace, name)` builds the object carried by a synthesized
/// `Delete` (only its name and namespace are used by the store).
pub fn merge_namespaces<K>(
    streams: Vec<BoxStream<'static, Item<K>>>,
    tombstone: impl Fn(&str, &str) -> K + Send + 'static,
) -> impl Stream<Item = Item<K>> + Send
where
    K: kube::Resource + Clone + Send + 'static,
{
    let n = streams.len();
    let tagged = stream::select_all(
        streams
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.map(move |r| (i, r)).boxed()),
    );
    let mut state = MuxState::<K>::new(n);
    tagged.flat_map(move |(i, r)| {
        let out = match r {
            Ok(ev) => state
                .handle(i, ev, &tombstone)
                .into_iter()
                .map(Ok)
                .collect(),
            Err(e) => vec![Err(e)],
        };
        stream::iter(out)
    })
}

struct MuxState<K> {
    /// Still collecting the first list of every namespace.
    initial: bool,
    first_done: Vec<bool>,
    /// Objects per namespace during the initial phase.
    buffer: Vec<BTreeMap<String, K>>,
    /// Names known per namespace after the initial phase.
    known: Vec<HashSet<String>>,
    /// Names seen in a running re-list, per namespace.
    relist: Vec<Option<HashSet<String>>>,
    namespace: Vec<String>,
}

impl<K: kube::Resource + Clone> MuxState<K> {
    fn new(n: usize) -> Self {
        MuxState {
            initial: true,
            first_done: vec![false; n],
            buffer: (0..n).map(|_| BTreeMap::new()).collect(),
            known: vec![HashSet::new(); n],
            relist: vec![None; n],
            namespace: vec![String::new(); n],
        }
    }

    fn handle(
        &mut self,
        i: usize,
        ev: Event<K>,
        tombstone: &dyn Fn(&str, &str) -> K,
    ) -> Vec<Event<K>> {
        if let Event::Apply(o) | Event::InitApply(o) | Event::Delete(o) = &ev {
            if self.namespace[i].is_empty() {
                self.namespace[i] = o.namespace().unwrap_or_default();
            }
        }
        if self.initial {
            match ev {
                Event::Init => self.buffer[i].clear(),
                Event::InitApply(o) | Event::Apply(o) => {
                    self.buffer[i].insert(o.name_any(), o);
                }
                Event::Delete(o) => {
                    self.buffer[i].remove(&o.name_any());
                }
                Event::InitDone => self.first_done[i] = true,
            }
            if !self.first_done.iter().all(|d| *d) {
                return Vec::new();
            }
            self.initial = false;
            let mut out = vec![Event::Init];
            for (ns, buf) in self.buffer.iter_mut().enumerate() {
                for (name, o) in std::mem::take(buf) {
                    self.known[ns].insert(name);
                    out.push(Event::InitApply(o));
                }
            }
            out.push(Event::InitDone);
            return out;
        }
        match ev {
            Event::Init => {
                self.relist[i] = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(o) => {
                let name = o.name_any();
                if let Some(seen) = self.relist[i].as_mut() {
                    seen.insert(name.clone());
                }
                self.known[i].insert(name);
                vec![Event::Apply(o)]
            }
            Event::InitDone => {
                let Some(seen) = self.relist[i].take() else {
                    return Vec::new();
                };
                let gone: Vec<String> = self.known[i].difference(&seen).cloned().collect();
                gone.into_iter()
                    .map(|name| {
                        self.known[i].remove(&name);
                        Event::Delete(tombstone(&self.namespace[i], &name))
                    })
                    .collect()
            }
            Event::Apply(o) => {
                self.known[i].insert(o.name_any());
                vec![Event::Apply(o)]
            }
            Event::Delete(o) => {
                self.known[i].remove(&o.name_any());
                vec![Event::Delete(o)]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::{self, ObjectRef};
    use kube::runtime::WatchStreamExt;

    fn cm(ns: &str, name: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some(ns.into());
        c
    }

    fn names(events: &[Event<ConfigMap>]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Init => "init".to_string(),
                Event::InitDone => "done".to_string(),
                Event::InitApply(o) => format!("+{}", o.name_any()),
                Event::Apply(o) => format!("~{}", o.name_any()),
                Event::Delete(o) => format!("-{}", o.name_any()),
            })
            .collect()
    }

    #[tokio::test]
    async fn initial_lists_are_released_together_and_relists_diffed() {
        let a: Vec<Item<ConfigMap>> = vec![
            Ok(Event::Init),
            Ok(Event::InitApply(cm("a", "a1"))),
            Ok(Event::InitApply(cm("a", "a2"))),
            Ok(Event::InitDone),
        ];
        let b: Vec<Item<ConfigMap>> = vec![
            Ok(Event::Init),
            Ok(Event::InitApply(cm("b", "b1"))),
            Ok(Event::InitDone),
        ];
        let merged = merge_namespaces(vec![stream::iter(a).boxed(), stream::iter(b).boxed()], cm);
        let out: Vec<Event<ConfigMap>> = merged.map(|r| r.unwrap()).collect().await;
        let n = names(&out);
        assert_eq!(n.first().map(String::as_str), Some("init"));
        assert_eq!(n.last().map(String::as_str), Some("done"));
        assert_eq!(n.iter().filter(|s| s.starts_with('+')).count(), 3);
    }

    #[test]
    fn relist_of_one_namespace_deletes_only_its_vanished_objects() {
        let mut st = MuxState::<ConfigMap>::new(2);
        let t = |ns: &str, n: &str| cm(ns, n);
        st.handle(0, Event::InitApply(cm("a", "a1")), &t);
        st.handle(0, Event::InitApply(cm("a", "a2")), &t);
        st.handle(0, Event::InitDone, &t);
        let released = st.handle(1, Event::InitDone, &t);
        assert_eq!(names(&released), vec!["init", "+a1", "+a2", "done"]);
        assert!(st.handle(0, Event::Init, &t).is_empty());
        assert_eq!(
            names(&st.handle(0, Event::InitApply(cm("a", "a2")), &t)),
            vec!["~a2"]
        );
        let out = st.handle(0, Event::InitDone, &t);
        assert_eq!(names(&out), vec!["-a1"]);
        match &out[0] {
            Event::Delete(o) => assert_eq!(o.namespace().as_deref(), Some("a")),
            _ => unreachable!(),
        }
        // The other namespace's re-list is independent.
        st.handle(1, Event::Init, &t);
        assert!(st.handle(1, Event::InitDone, &t).is_empty());
    }

    #[tokio::test]
    async fn a_store_fed_by_the_mux_holds_every_namespace() {
        let (reader, writer) = reflector::store::<ConfigMap>();
        let a: Vec<Item<ConfigMap>> = vec![
            Ok(Event::Init),
            Ok(Event::InitApply(cm("a", "x"))),
            Ok(Event::InitDone),
        ];
        let b: Vec<Item<ConfigMap>> = vec![
            Ok(Event::Init),
            Ok(Event::InitApply(cm("b", "x"))),
            Ok(Event::InitDone),
        ];
        merge_namespaces(vec![stream::iter(a).boxed(), stream::iter(b).boxed()], cm)
            .reflect(writer)
            .for_each(|_| async {})
            .await;
        assert!(reader.get(&ObjectRef::new("x").within("a")).is_some());
        assert!(reader.get(&ObjectRef::new("x").within("b")).is_some());
    }
}
