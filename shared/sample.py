"""A realistic sample district for the demo, the tests and the benchmarks.

Deterministic (seeded): the same seed gives the same households. Resident
ID numbers are computed with the GB 11643 check digit, for the sample
district's region code; they are made up, not real people's.
"""
from __future__ import annotations

import random
from datetime import date, timedelta

from stdnum.cn import ric

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国红梅志强玉兰德文海燕春花俊峰"
STREETS = ["文化路", "纸坊大街", "江夏大道", "熊廷弼路", "兴新街", "复江道", "北华街", "中央大街"]


def make_resident_id(birth: date, seq: int, region: str = "420115") -> str:
    first17 = f"{region}{birth:%Y%m%d}{seq % 1000:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


class SampleDistrict:
    def __init__(self, seed: int = 2024, today: date | None = None):
        self.rng = random.Random(seed)
        self.today = today or date.today()
        self._seq = 0
        self._used: set[str] = set()

    def name(self, surname: str | None = None) -> str:
        surname = surname or self.rng.choice(SURNAMES)
        return surname + "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2))))

    def _rid(self, birth: date) -> str:
        # unique within a district: the 3-digit sequence code is bumped on a clash
        while True:
            self._seq += 1
            rid = make_resident_id(birth, self._seq)
            if rid[:17] not in self._used:
                self._used.add(rid[:17])
                return rid

    def _birth(self, age: int) -> date:
        return self.today.replace(year=self.today.year - age) - timedelta(days=self.rng.randint(1, 360))

    def member(self, relation: str, age: int, surname: str) -> dict:
        birth = self._birth(age)
        working_age = 16 <= age < 60
        disability = self.rng.choices(["none", "grade1", "grade2", "grade3", "grade4"], [80, 4, 5, 6, 5])[0]
        illness = self.rng.choices(["none", "chronic", "serious"], [70, 22, 8])[0]
        if not working_age:
            capacity = "none"
        elif disability in ("grade1", "grade2") or illness == "serious":
            capacity = "none"
        else:
            capacity = self.rng.choices(["full", "partial"], [75, 25])[0]
        if age < 7:
            employment = "preschool"
        elif age < 18:
            employment = "student"
        elif age >= 60:
            employment = "retired"
        else:
            employment = self.rng.choices(["unemployed", "flexible", "employed", "farming"], [45, 30, 15, 10])[0]
        return {"name": self.name(surname), "resident_id": self._rid(birth), "relation": relation,
                "labour_capacity": capacity, "disability": disability, "illness": illness,
                "employment": employment}

    def household(self, community_code: str, area_type: str = "urban") -> dict:
        surname = self.rng.choice(SURNAMES)
        shape = self.rng.choices(["single_elder", "couple_elder", "single_parent", "family", "disabled"],
                                 [20, 15, 25, 30, 10])[0]
        members = []
        if shape == "single_elder":
            members.append(self.member("head", self.rng.randint(62, 88), surname))
        elif shape == "couple_elder":
            members.append(self.member("head", self.rng.randint(60, 80), surname))
            members.append(self.member("spouse", self.rng.randint(58, 80), self.rng.choice(SURNAMES)))
        elif shape == "single_parent":
            members.append(self.member("head", self.rng.randint(28, 50), surname))
            for _ in range(self.rng.randint(1, 2)):
                members.append(self.member("child", self.rng.randint(3, 17), surname))
        elif shape == "family":
            members.append(self.member("head", self.rng.randint(30, 55), surname))
            members.append(self.member("spouse", self.rng.randint(28, 55), self.rng.choice(SURNAMES)))
            for _ in range(self.rng.randint(1, 3)):
                members.append(self.member("child", self.rng.randint(1, 20), surname))
        else:
            head = self.member("head", self.rng.randint(35, 59), surname)
            head.update(disability="grade1", labour_capacity="none", employment="unemployed")
            members.append(head)
            members.append(self.member("parent", self.rng.randint(62, 85), surname))
        incomes = []
        for i, m in enumerate(members):
            if m["employment"] in ("flexible", "employed", "farming"):
                low, high = (300, 900) if m["employment"] != "employed" else (800, 1500)
                incomes.append({"member": i, "source": "wages" if m["employment"] != "farming" else "farming",
                                "monthly_amount": f"{self.rng.randint(low, high)}.{self.rng.randint(0, 99):02d}"})
            elif m["employment"] == "retired" and self.rng.random() < 0.6:
                incomes.append({"member": i, "source": "pension",
                                "monthly_amount": f"{self.rng.randint(100, 600)}.00"})
        assets = []
        if self.rng.random() < 0.7:
            assets.append({"kind": "house", "description": "自有住房一处",
                           "value": str(self.rng.randint(20, 150) * 1000)})
        if self.rng.random() < 0.4:
            assets.append({"kind": "savings", "description": "银行存款",
                           "value": f"{self.rng.randint(0, 8000)}.00"})
        return {"community_code": community_code, "area_type": area_type,
                "address": f"{self.rng.choice(STREETS)}{self.rng.randint(1, 300)}号",
                "phone": f"13{self.rng.randint(0, 9)}{self.rng.randint(10000000, 99999999)}",
                "members": members, "incomes": incomes, "assets": assets}
