/*
 * vCPUs: SVM or VMX, whichever the machine has (include/vcpu.hpp).
 */
#include "vcpu.hpp"
#include "cpu.hpp"
#include "objects.hpp"
#include "svm.hpp"
#include "vmx.hpp"

bool Virt::svm() { return Svm::usable; }
bool Virt::vmx() { return Vmx::usable; }

void Virt::init_cpu(Cpu &c)
{
    // A machine has one kind (AMD: SVM, Intel: VMX); vCPUs only where every CPU can run them,
    // since the HIP's flag is one for all.
    bool svm = c.feat.svm && Svm::init_cpu(c);
    bool vmx = !c.feat.svm && c.feat.vmx && Vmx::init_cpu(c);
    if (c.bsp) {
        Svm::usable = svm;
        Vmx::usable = vmx;
        return;
    }
    if (!svm)
        __atomic_store_n(&Svm::usable, false, __ATOMIC_RELAXED);
    if (!vmx)
        __atomic_store_n(&Vmx::usable, false, __ATOMIC_RELAXED);
}

bool Virt::create(Ec &ec) { return Vmx::usable ? Vmx::create(ec) : Svm::create(ec); }

void Virt::destroy(Ec &ec)
{
    if (ec.vcpu.vmcs)
        Vmx::destroy(ec);
    if (ec.vcpu.vmcb)
        Svm::destroy(ec);
}

void Virt::run(Ec *ec)
{
    if (ec->vcpu.vmcs)
        Vmx::run(ec);
    Svm::run(ec);
}

void Virt::to_utcb(Ec &ec, u64 mtd, Utcb &u)
{
    if (ec.vcpu.vmcs)
        Vmx::to_utcb(ec, mtd, u);
    else
        Svm::to_utcb(ec, mtd, u);
}

const char *Virt::from_utcb(const Utcb &u, Ec &ec)
{
    return ec.vcpu.vmcs ? Vmx::from_utcb(u, ec) : Svm::from_utcb(u, ec);
}
