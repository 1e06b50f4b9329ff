"""The brand profiles the issues ask for, by id: the tests check each one exists and works."""

REAL = [
    "tesla_model3",
    "gwm_haval_h6_phev",
    "hongqi_hs5",
    "mg",
    "vw_mqb",
    "hyundai_2015",
    "bmw_e9x",
    "toyota_2017",
]
REFERENCE = ["xiaomi_su7", "nio_et7", "byd_seal", "xpeng_p7", "li_auto_l9", "kaiyun_pickman"]
ALL = REAL + REFERENCE
