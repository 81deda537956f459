import KAF
