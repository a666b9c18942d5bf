//! Static checks over a compiled rule set (STUB: being implemented).
