"""Generate a synthetic Jekyll archive of finews-sized posts (300–700 Chinese characters each).

    python benchmarks/gen_archive.py OUT_DIR [--posts 100000] [--seed 1]

The text is random sentences over a built-in vocabulary of common Chinese finance words with a Zipf-like
frequency, so common words occur in most posts (the hard case for ranking) and rare ones in a few.
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime, timedelta
from pathlib import Path

WORDS = """
市场 公司 经济 增长 银行 投资 美元 人民币 汇率 股票 债券 基金 指数 上涨 下跌 政策 央行 利率 通胀 数据
企业 发展 金融 资本 价格 行业 消费 出口 进口 贸易 房地产 科技 能源 汽车 电池 芯片 半导体 互联网 平台
监管 改革 创新 项目 产业 制造业 服务业 收入 利润 营收 季度 同比 环比 预期 分析师 投资者 交易 成交 资金
流动性 风险 信用 违约 评级 黄金 原油 大宗商品 期货 外汇 港股 美股 科创板 创业板 上市 融资 并购 重组 股东
董事会 公告 业绩 财报 分红 回购 减持 增持 估值 板块 龙头 医药 生物 疫苗 新能源 光伏 风电 储能 锂电 钢铁
煤炭 有色 化工 农业 粮食 物流 航运 港口 机场 铁路 旅游 酒店 餐饮 零售 电商 直播 游戏 传媒 教育 医疗
保险 证券 信托 租赁 支付 数字 人工智能 云计算 数据中心 通信 手机 电视 家电 地产 城市 区域 地方 政府 财政
税收 债务 赤字 预算 就业 失业 工资 人口 老龄化 养老 社保 住房 租金 土地 基建 投资额 订单 库存 产能 供给
需求 库存量 价格指数 采购经理 景气 复苏 放缓 衰退 波动 反弹 回落 走强 走弱 震荡 突破 新高 新低 收盘 开盘
早盘 午盘 尾盘 北向资金 南向资金 主力 机构 散户 私募 公募 外资 内资 国企 民企 央企 集团 子公司 合作 协议
签约 发布 推出 宣布 表示 认为 预计 显示 指出 强调 提出 要求 支持 鼓励 推动 加快 扩大 稳定 保持 提高 降低
""".split()
RARE = [f"{a}{b}" for a in "甲乙丙丁戊己庚辛壬癸" for b in "子丑寅卯辰巳午未申酉戌亥"]  # rare tokens
PUNCT = ["，", "，", "，", "、"]
CATEGORIES = [f"cat{i:04d}" for i in range(2000)]


def sentence(rng: random.Random, weights: list[float]) -> str:
    n = rng.randint(6, 16)
    parts = rng.choices(WORDS, weights=weights, k=n)
    if rng.random() < 0.3:
        parts.insert(rng.randrange(len(parts)), rng.choice(RARE))
    out = ""
    for i, w in enumerate(parts):
        out += w
        if i and i < n - 1 and rng.random() < 0.15:
            out += rng.choice(PUNCT)
    return out + rng.choice("。。。！？")


def body(rng: random.Random, weights: list[float]) -> str:
    target = rng.randint(300, 700)
    paras, length = [], 0
    while length < target:
        para = "".join(sentence(rng, weights) for _ in range(rng.randint(1, 4)))
        paras.append(para)
        length += len(para)
    return "\n\n".join(paras)


def generate(out: Path, posts: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(WORDS))]
    shuffled = WORDS[:]
    rng.shuffle(shuffled)
    for i, when in enumerate(post_times(out, posts)):
        cat = CATEGORIES[int(rng.paretovariate(1.2)) % len(CATEGORIES)]
        title = "".join(rng.choices(WORDS, weights=weights, k=rng.randint(3, 7)))
        write_post(out, i, when, title, cat, body(rng, weights))


def post_times(out: Path, posts: int):
    """Create the archive's folders and _config.yml; the posts' times, 7 minutes apart from 2021."""
    (out / "_posts").mkdir(parents=True, exist_ok=True)
    (out / "_config.yml").write_text(
        "url: https://bench.example\ntimezone: Asia/Shanghai\n", encoding="utf-8"
    )
    start = datetime(2021, 1, 1)
    return (start + timedelta(minutes=7 * i) for i in range(posts))


def write_post(out: Path, i: int, when: datetime, title: str, category: str, text: str) -> None:
    """One post of a benchmark archive, in the finews format, in a folder per year."""
    folder = out / "_posts" / f"{when:%Y}"
    folder.mkdir(exist_ok=True)
    post = (
        f'---\nlayout: post\ntitle: "{title}"\ndate: {when:%Y-%m-%d %H:%M:%S} +0800\n'
        f"categories: {category}\ntags: 滚动新闻\n---\n\n{text}\n\n"
        f"<https://source.example/news/{i}.html>\n"
    )
    (folder / f"{when:%Y-%m-%d}-{i:07d}.md").write_text(post, encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--posts", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    generate(a.out, a.posts, a.seed)


if __name__ == "__main__":
    main()
